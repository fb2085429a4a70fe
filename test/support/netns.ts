/**
 * The network-namespace hosts harness now lives in src (src/cluster/netns.ts) so `kerf bench`
 * verbs shipped in dist/src can use it; the tests import it from here as before.
 */
export { TestNet, netnsUnavailable } from '../../src/cluster/netns.js';
export type { NetHost, TestNetOptions } from '../../src/cluster/netns.js';
