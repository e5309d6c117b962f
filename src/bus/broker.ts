import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';

export interface EmbeddedBroker {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The embedded MQTT broker (aedes) of the default setup, so `npm start` needs no other
 * service. Production uses an external broker via OCTOPUS_MQTT_URL.
 */
export async function startEmbeddedBroker(opts: { port: number; host?: string }): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer(broker.handle);
  const host = opts.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`embedded MQTT broker: cannot listen on ${host}:${opts.port}: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (another broker running? set OCTOPUS_MQTT_PORT or OCTOPUS_MQTT_URL)' : ''}`)),
    );
    server.listen(opts.port, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        broker.close(() => server.close(() => resolve()));
        // Connected clients keep the server open; aedes.close() ends them first.
      }),
  };
}
