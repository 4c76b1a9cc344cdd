// The dashboard page served at GET / on the admin listener: plain HTML that loads its script and
// style from the same listener (/dashboard.js, /dashboard.css). Strings in modules, so the page
// needs no build step and ships inside the single binary (`bun build --compile`).
export { DASHBOARD_JS } from "./client.ts";
export { DASHBOARD_CSS } from "./style.ts";

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fulcrum</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>Fulcrum</h1>
  <div id="status" class="status"></div>
  <div class="right">
    <span id="live" class="live" data-live="connecting">connecting</span>
    <button id="token-button" type="button">Token</button>
  </div>
</header>
<main>
  <section id="listeners-part" class="part"><h2>Listeners</h2><div id="listeners"></div></section>
  <section class="part"><h2>Pools</h2><div id="pools"></div></section>
  <section id="vrrp-part" class="part"><h2>VRRP</h2><div id="vrrp"></div></section>
  <section id="l4-part" class="part"><h2>L4</h2><div id="l4"></div></section>
</main>
<dialog id="token-dialog">
  <form id="token-form">
    <p>Changes need the admin token (the file <code>admin.token_file</code> names). It is kept in this tab only.</p>
    <input id="token-input" type="password" autocomplete="off" placeholder="admin token" aria-label="admin token">
    <div class="buttons">
      <button id="token-forget" type="button">Forget</button>
      <button id="token-cancel" type="button">Cancel</button>
      <button id="token-save" type="submit">Save</button>
    </div>
  </form>
</dialog>
<div id="toast" class="toast" role="status"></div>
</body>
</html>
`;
