// The console's only script (the Content-Security-Policy allows no inline script): confirm
// dialogs for actions, and live updates by a short poll. An element with data-live="URL" gets
// its content replaced every data-interval milliseconds by what URL answers (HTML the server
// rendered and escaped, from the same code as the page). The requests carry X-Console-Live, so
// they do not extend the session: a tab left open does not keep someone logged in for ever.
(() => {
  document.addEventListener('submit', (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    const question = form.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  for (const element of document.querySelectorAll('[data-live]')) {
    const url = element.getAttribute('data-live');
    const interval = Number(element.getAttribute('data-interval')) || 2000;
    let busy = false;
    const tick = async () => {
      if (busy || document.hidden || !url) return;
      busy = true;
      try {
        const response = await fetch(url, {
          headers: { 'X-Console-Live': '1' },
          credentials: 'same-origin',
          cache: 'no-store',
        });
        if (response.status === 401) {
          window.location.assign(
            `/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`,
          );
          return;
        }
        if (!response.ok) return;
        element.innerHTML = await response.text();
        const countedAt = response.headers.get('x-counted-at');
        const label = document.getElementById('counted-at');
        if (countedAt && label) label.textContent = countedAt;
        document.body.classList.remove('stale');
      } catch {
        // The server is away for a moment: say so, and try again at the next tick.
        document.body.classList.add('stale');
      } finally {
        busy = false;
      }
    };
    window.setInterval(tick, interval);
  }
})();
