/**
 * The HTTP ceiling for the encrypt benchmark: a bare Fastify route that parses the same JSON body
 * and answers a small JSON object, without auth, validation or crypto.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/noop', async (request) => ({ ok: typeof request.body === 'object' }));
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
