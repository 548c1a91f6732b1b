// Refusals for people. A browser (Accept has text/html, no Authorization) that is refused gets a
// small HTML page with the same status instead of CDF's JSON: what happened in words, who is
// signed in, and links to log in again, switch user or log out. No script at all, and a CSP
// that allows none; every interpolated value is escaped.
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import { isBrowser } from '../pipeline/decide.js';
import type { GatewayState } from '../state.js';

/** Sent with every page: nothing but the inline <style> may load or run. */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export { isBrowser };

/** The refusals that become pages: 401, 403, 404, and any failure of the login endpoints. */
export function wantsPage(headers: IncomingHttpHeaders, status: number, loginEndpoint: boolean): boolean {
  if (!isBrowser(headers)) return false;
  return status === 401 || status === 403 || status === 404 || (loginEndpoint && status >= 400);
}

export interface PageInput {
  readonly status: number;
  /** The error's public message (picks the words; API jargon is not shown). */
  readonly message: string;
  /** The signed-in user's display name, or null. */
  readonly user: string | null;
  /** Login projects to offer (empty: no login configured). */
  readonly projects: readonly string[];
  /** Where a new login should come back to (a same-origin path). */
  readonly back: string;
  /** The request was to /auth/login or /auth/callback. */
  readonly loginEndpoint: boolean;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

function words(p: PageInput): { title: string; text: string } {
  if (p.loginEndpoint) {
    return p.status >= 500
      ? { title: 'Sign-in is unavailable', text: 'The sign-in service cannot be reached right now. Please try again in a moment.' }
      : { title: 'Sign-in failed', text: 'The sign-in could not be completed. It may have expired or been started in another window. Please try again.' };
  }
  switch (p.status) {
    case 401: return { title: 'You are not signed in', text: 'This page needs you to sign in, or your session has ended.' };
    case 403: return p.message.includes('cross-site')
      ? { title: 'Request blocked', text: 'This request came from another site, so it was not carried out with your session.' }
      : { title: 'Access denied', text: 'Your account is not allowed to open this page. You can sign in as someone else.' };
    case 404: return { title: 'Page not found', text: 'There is nothing at this address.' };
    default: return { title: 'Request refused', text: 'The gateway refused this request.' };
  }
}

const loginHref = (project: string, back: string): string =>
  `/auth/login?${new URLSearchParams({ project, redirect: back }).toString()}`;

/** The page's HTML. */
export function refusalPage(p: PageInput): string {
  const { title, text } = words(p);
  const links: string[] = [];
  for (const project of p.projects) {
    const label = p.projects.length === 1 ? (p.user === null ? 'Sign in' : 'Sign in again') : `Sign in to ${project}`;
    links.push(`<li><a href="${escapeHtml(loginHref(project, p.back))}">${escapeHtml(label)}</a></li>`);
  }
  if (p.user !== null) {
    if (p.projects.length > 0) {
      // Logging out first, then in: the IdP is asked for a (possibly different) account.
      const relogin = `/auth/logout?${new URLSearchParams({ redirect: loginHref(p.projects[0]!, p.back) }).toString()}`;
      links.push(`<li><a href="${escapeHtml(relogin)}">Switch user</a></li>`);
    }
    links.push('<li><a href="/auth/logout">Sign out</a></li>');
  }
  // Without a user the 401 heading already says it; elsewhere it is worth saying.
  const who = p.user !== null ? `<p class="who">Signed in as <strong>${escapeHtml(p.user)}</strong>.</p>\n`
    : p.status === 401 && !p.loginEndpoint ? '' : '<p class="who">You are not signed in.</p>\n';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${p.status} ${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f5f7;color:#1b1d21;line-height:1.5}
main{max-width:34rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin:0 0 .75rem}
p{margin:.5rem 0}
.who{color:#3a3f47}
.detail{color:#5a606b;font-size:.85rem}
ul{list-style:none;padding:0;margin:1.25rem 0 0;display:flex;gap:1rem;flex-wrap:wrap}
a{color:#0b57d0;font-weight:600}
a:focus{outline:3px solid #0b57d0;outline-offset:2px}
</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(text)}</p>
${who}${links.length > 0 ? `<nav aria-label="Account"><ul>\n${links.join('\n')}\n</ul></nav>\n` : ''}<p class="detail">Status ${p.status} (${escapeHtml(STATUS_CODES[p.status] ?? 'Error')})</p>
</main>
</body>
</html>
`;
}

/** Response headers for a page (the error's own headers, e.g. WWW-Authenticate, are kept too). */
export function pageHeaders(): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
  };
}

// ---- glue: the error handler in server.ts calls sendPage() for browser refusals ----------------

export interface PageDeps {
  /** Reads the session cookie (no refresh); null when login is not configured. */
  readonly sessionUser: ((cookieHeader: string | string[] | undefined) => Promise<string | null>) | null;
  /** The login project of the route at `path`, or null. */
  readonly routeLogin: (path: string) => string | null;
  /** Every login project. */
  readonly projects: readonly string[];
}

export interface PageRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The canonical path (null when it could not be parsed) and the signed-in subject, if known. */
  readonly path: string | null;
  readonly sub: string | null;
}

/** The page for a refusal of `req`; the caller sends it with pageHeaders() and the error's status. */
export async function pageFor(deps: PageDeps, req: PageRequest, status: number, message: string): Promise<string> {
  const loginEndpoint = isLoginEndpoint(req.path);
  let user = req.sub;
  if (user === null && deps.sessionUser !== null) user = await deps.sessionUser(req.headers.cookie).catch(() => null);
  const own = req.path === null ? null : deps.routeLogin(req.path);
  const onRoute = req.path !== null && !req.path.startsWith('/auth/') && !req.path.startsWith('/login/');
  return refusalPage({
    status, message, user, loginEndpoint,
    projects: own !== null ? [own] : deps.projects,
    back: onRoute && req.method === 'GET' ? req.url : '/',
  });
}

/** PageDeps read from the current gateway state. */
export function pageDepsOf(state: GatewayState): PageDeps {
  const sessions = state.login?.sessions ?? null;
  return {
    sessionUser: sessions === null ? null : async (cookie) => {
      const s = await sessions.read(sessions.cookies(cookie));
      return s === null ? null : (s.name ?? s.sub);
    },
    routeLogin: (path) => state.routes.match(path)?.login ?? null,
    projects: state.login === null ? [] : Object.keys(state.login.config.projects),
  };
}

export function isLoginEndpoint(path: string | null): boolean {
  return path === '/auth/login' || path === '/auth/callback';
}
