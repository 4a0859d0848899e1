#!/usr/bin/env node
// Runs every benchmark in sequence (never in parallel: they would measure each other) and writes
// the combined output to bench/results/latest.txt. `npm run bench` builds first (HTTP bench uses dist/).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

// Compiled (npm run bench builds first): production runs compiled code, not a TS loader.
const benches = [
  ['dist/bench/inprocess-envelope.js'],
  ['dist/bench/http-encrypt.js', '--seconds', '15'],
  ['dist/bench/vault-objects.js', '--count', '10000'],
  ['dist/bench/byok-providers.js'],
  ['dist/bench/repack-scale.js'],
];
let output = `# keystrata benchmarks — ${new Date().toISOString()}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), load average before: ${loadavg().map((n) => n.toFixed(2)).join(' ')}\n\n`;
for (const [script, ...args] of benches) {
  const run = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.stdout.write(run.stdout);
  output += `$ node ${script} ${args.join(' ')}\n${run.stdout}\n`;
  if (run.status !== 0) {
    process.exitCode = 1;
    output += `(exited with ${run.status})\n\n`;
  }
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/latest.txt', output);
