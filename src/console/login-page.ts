// The login page: the one console page shown to nobody in particular, so it has no navigation.
// Its form carries a token that must match a cookie set with it (double submit): a POST /login
// from another site cannot log the browser in as someone else (login CSRF).
import { type Html, html } from './html.ts';

export function loginPage(options: {
  csrfToken: string;
  next: string;
  username?: string;
  error?: string;
}): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · mailer console</title>
<link rel="stylesheet" href="/assets/console.css">
</head>
<body class="login">
<main>
<form method="post" action="/login" class="card login-form">
  <h1><span class="brand">mailer</span> console</h1>
  ${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
  <input type="hidden" name="_csrf" value="${options.csrfToken}">
  <input type="hidden" name="next" value="${options.next}">
  <label>Username
    <input name="username" autocomplete="username" required autofocus value="${options.username ?? ''}">
  </label>
  <label>Password
    <input name="password" type="password" autocomplete="current-password" required>
  </label>
  <button type="submit" class="primary">Log in</button>
  <p class="muted">Accounts are added with <code>mailer console user add</code>.</p>
</form>
</main>
</body>
</html>`;
}
