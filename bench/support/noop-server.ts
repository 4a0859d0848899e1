/**
 * The HTTP ceiling for the encrypt benchmark: a bare Fastify route that parses the same JSON body
 * and answers a JSON object of the same size as an encrypt response (so both move the same bytes),
 * without auth, validation or crypto.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
const keyId = '00000000-0000-4000-8000-000000000000';
app.post('/noop', async (request) => {
  const { plaintext } = request.body as { plaintext: string };
  // ks1 text is ~1.37x the plaintext's base64 here; pad to the same size.
  return { ciphertext: 'ks1:' + plaintext + plaintext.slice(0, 60), keyId };
});
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
