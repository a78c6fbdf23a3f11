import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy the test controls, in front of a real service: `cut()` makes the service
 * unreachable (open connections reset, new ones refused at once), `restore()` brings it back;
 * `delayMs` holds what clients send for that long (a slow link to the service), in order.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private up = true;
  delayMs = 0;

  private constructor(private readonly server: Server) {
    server.on('connection', (client: Socket) => {
      if (!this.up) return client.destroy();
      const upstream = connect(this.targetPort, this.targetHost);
      this.track(client);
      this.track(upstream);
      upstream.pipe(client);
      client.on('data', (chunk: Buffer) => {
        // One fixed delay for every chunk: timers of equal length fire in order, so the stream stays in order.
        if (this.delayMs === 0) upstream.write(chunk);
        else setTimeout(() => upstream.write(chunk), this.delayMs);
      });
      client.on('end', () => upstream.end());
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
  }

  private targetPort = 0;
  private targetHost = '127.0.0.1';

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    const proxy = new TcpProxy(createServer());
    proxy.targetPort = targetPort;
    proxy.targetHost = targetHost;
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get isUp(): boolean {
    return this.up;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  cut(): void {
    this.up = false;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
