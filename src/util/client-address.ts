import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** `::ffff:10.0.0.1` (how a dual-stack socket shows an IPv4 peer) → `10.0.0.1`. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * Which address a request comes from. Behind a load balancer every TCP peer is the balancer, so
 * per-IP limits would put all clients in one budget; when the peer is a trusted proxy, the
 * client is the nearest address in X-Forwarded-For that is not itself a trusted proxy. Entries
 * from untrusted peers are ignored: anyone can send the header.
 */
export class ClientAddressResolver {
  private readonly trusted = new BlockList();
  private readonly any: boolean;

  /** `proxies`: addresses or CIDR ranges, IPv4 or IPv6 (e.g. `10.0.0.0/8`, `::1`). */
  constructor(proxies: readonly string[]) {
    for (const entry of proxies) {
      const [address = '', bits] = entry.split('/');
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.trusted.addAddress(address, family);
      else this.trusted.addSubnet(address, Number(bits), family);
    }
    this.any = proxies.length > 0;
  }

  private isTrusted(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.trusted.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }

  of(req: IncomingMessage): string {
    const peer = plain(req.socket.remoteAddress ?? '');
    if (!this.any || !this.isTrusted(peer)) return peer;
    const header = req.headers['x-forwarded-for'];
    if (typeof header !== 'string') return peer;
    const hops = header.split(',');
    let client = peer;
    // From the hop nearest to us outwards: each trusted proxy vouches for the one before it.
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = plain((hops[i]).trim());
      if (isIP(hop) === 0) break; // a malformed entry ends what can be believed
      client = hop;
      if (!this.isTrusted(hop)) break;
    }
    return client;
  }
}

/** True for an IPv4/IPv6 address or CIDR range, as `trustedProxies` takes them. */
export function isAddressOrRange(entry: string): boolean {
  const [address = '', bits, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128);
}
