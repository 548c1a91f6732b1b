// The README's nginx recipe (auth_request) with real nginx (Debian nginx-light) in front of the
// gateway and an app: nginx asks /auth/verify nginx-style (X-Original-Method/-URI), the gateway
// answers 200/401/403, and the recipe turns a browser's 401 into the login redirect.
import t from 'tap';
import { forwardAuthSuite } from '../fixtures/forward-auth.js';

t.test('nginx auth_request recipe', (t) => forwardAuthSuite(t, 'nginx'));
