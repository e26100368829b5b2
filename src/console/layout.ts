// The frame of every console page: the navigation, who is logged in, the logout form (a POST
// with the CSRF token), and the page's own content. Styles and scripts are files served by the
// console itself (src/console/assets/), never inline and never from a CDN.
import type { ConsoleUser } from './context.ts';
import { type Html, html } from './html.ts';

export const NAV = [
  { path: '/campaigns', label: 'Campaigns' },
  { path: '/customers', label: 'Customers' },
  { path: '/suppressions', label: 'Suppression list' },
  { path: '/jobs', label: 'Jobs' },
  { path: '/templates', label: 'Templates' },
  { path: '/audit', label: 'Audit log' },
] as const;

export interface PageOptions {
  title: string;
  user: ConsoleUser;
  csrfToken: string;
  body: Html;
  /** The NAV path to mark as current. */
  active?: string;
  /** Extra scripts from /assets/ (file names), loaded after console.js. */
  scripts?: string[];
}

/** A form's hidden CSRF field; every POST form in the console carries it. */
export function csrfField(token: string): Html {
  return html`<input type="hidden" name="_csrf" value="${token}">`;
}

export function page(options: PageOptions): Html {
  const { user, csrfToken } = options;
  const nav = NAV.map(
    (item) =>
      html`<a href="${item.path}"${options.active === item.path ? html` aria-current="page"` : ''}>${item.label}</a>`,
  );
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · mailer console</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
${(options.scripts ?? []).map((name) => html`<script src="/assets/${name}" defer></script>`)}
</head>
<body>
<header>
  <strong class="brand">mailer</strong>
  <nav>${nav}</nav>
  <form method="post" action="/logout" class="logout">
    ${csrfField(csrfToken)}
    <span class="who">${user.username} (${user.role}${user.canQueue ? ', may queue' : ''})</span>
    <button type="submit">Log out</button>
  </form>
</header>
<main>
<h1>${options.title}</h1>
${options.body}
</main>
</body>
</html>`;
}
