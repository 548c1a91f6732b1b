// A browser without a browser: a host-keyed cookie jar and the login through the gateway and the
// development IdP's forms (demo/idp.mjs: any password, then consent), redirects followed by hand.
export class CookieJar {
  #cookies = new Map();
  store(url, setCookies) {
    for (const sc of setCookies) {
      const [pair = '', ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const expired = attrs.some((a) => /^\s*max-age=(0|-)/i.test(a));
      const key = `${url.hostname}\0${name}`;
      if (expired) this.#cookies.delete(key);
      else this.#cookies.set(key, { host: url.hostname, name, value: pair.slice(eq + 1).trim() });
    }
  }
  header(url) {
    return [...this.#cookies.values()].filter((c) => c.host === url.hostname).map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

/** Logs `user` in through the gateway at `gatewayUrl`; returns the jar holding the session cookies. */
export async function login(gatewayUrl, project, user, landing) {
  const jar = new CookieJar();
  const send = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    const cookie = jar.header(url);
    if (cookie) headers.set('cookie', cookie);
    headers.set('accept', 'text/html');
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(url, res.headers.getSetCookie());
    return res;
  };
  let url = new URL(`/auth/login?${new URLSearchParams({ project, redirect: landing })}`, gatewayUrl);
  let res = await send(url);
  for (let step = 0; step < 20; step++) {
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const next = new URL(res.headers.get('location'), url);
      if (next.origin === new URL(gatewayUrl).origin && next.pathname === landing) return jar;
      url = next;
      res = await send(url);
      continue;
    }
    if (res.status === 200 && url.pathname.startsWith('/interaction/')) {
      const html = await res.text();
      const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1];
      const body = prompt === 'login' ? new URLSearchParams({ prompt, login: user, password: 'x' }) : new URLSearchParams({ prompt: 'consent' });
      res = await send(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      continue;
    }
    throw new Error(`login: unexpected ${res.status} at ${url.pathname}: ${(await res.text()).slice(0, 200)}`);
  }
  throw new Error('login: too many steps');
}
