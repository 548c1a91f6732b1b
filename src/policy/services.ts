// The services authorization may ask, built once from configuration: CDF's token/inspect (the
// `cdf:` section) and one Microsoft Graph client per issuer with `groupsOverage`.
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import { CdfInspector } from '../cdf/inspect.js';
import { GraphGroups } from '../token/overage.js';
import type { Principal } from '../token/principal.js';
import type { PolicyServices } from './authorize.js';

export interface PolicyRuntime extends PolicyServices {
  readonly inspector: CdfInspector | null;
  close(): void;
}

export function createPolicyServices(
  config: Pick<GatewayConfig, 'issuers' | 'cdf'>,
  deps: { clock: Clock; fetch?: typeof fetch; logger?: Logger; metrics?: Metrics; sleep?: (ms: number) => Promise<void> },
): PolicyRuntime {
  const inspector = config.cdf == null ? null : new CdfInspector(config.cdf, deps);
  const graphs = new Map<string, GraphGroups>();
  for (const i of config.issuers) {
    if (i.groupsOverage != null) graphs.set(i.issuer, new GraphGroups(i.issuer, i.groupsOverage, deps));
  }
  return {
    inspector,
    overage(p: Principal) {
      if (graphs.size === 0) return null;
      const g = graphs.get(p.issuer);
      return g !== undefined && g.canResolve(p) ? g : null;
    },
    close() {
      inspector?.close();
      for (const g of graphs.values()) g.close();
    },
  };
}
