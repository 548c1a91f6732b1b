import { generateKeyPairSync } from 'node:crypto';
import { SignJWT, exportJWK } from 'jose';
import { performance } from 'node:perf_hooks';
import { TokenVerifier } from '../dist/token/verify.js';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' };
const now = Math.floor(Date.now()/1000);
const ISS='https://i', AUD='a';
const toks=[]; for (let i=0;i<1000;i++) toks.push(await new SignJWT({ sub: 'u'+i }).setIssuer(ISS).setAudience(AUD).setIssuedAt(now).setExpirationTime(now+3600).setProtectedHeader({alg:'RS256',kid:'k'}).sign(privateKey));
const v = new TokenVerifier({ issuers:[{issuer:ISS,jwksUri:ISS+'/jwks',audiences:[AUD],algorithms:['RS256']}], tokens:{jwksTimeoutMs:1000,jwksCooldownMs:30000,jwksCacheMaxAgeMs:600000,jwksMaxStaleMs:3600000,clockToleranceSec:30,maxTokenBytes:12288,cacheSize:0}, fetch: async()=>new Response(JSON.stringify({keys:[jwk]}),{status:200}) });
await v.warmUp();
for (let r=0;r<5;r++){ const t0=performance.now(); for (const t of toks) await v.verify(t); console.log(((performance.now()-t0)*1000/toks.length).toFixed(1)); }
