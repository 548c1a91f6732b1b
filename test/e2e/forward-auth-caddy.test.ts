// The README's Caddy recipe (forward_auth) with real Caddy (Debian caddy 2.6) in front of the
// gateway and an app: Caddy asks /auth/verify Traefik-style (X-Forwarded-Method/-Uri) and passes
// any non-2xx answer on, so the gateway itself sends a browser without a session to the login.
import t from 'tap';
import { forwardAuthSuite } from '../fixtures/forward-auth.js';

t.test('Caddy forward_auth recipe', (t) => forwardAuthSuite(t, 'caddy'));
