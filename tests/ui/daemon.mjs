// daemon.mjs - runs `visiond serve` on an ephemeral port for the browser tests, the way
// tests/ref/daemon.py does for the Python ones: from the project root (so --models models finds
// ./models), with an empty config file and no VISIOND_* variables, the port read from the
// `listening on HOST:PORT` log line. A daemon with a gallery (issue 15) keeps it in a data directory of
// its own, removed when it stops, never in the project's ./data.
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LISTENING = /listening on (\S+):(\d+)/;
const SANITIZER = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer/;

export class Daemon {
  constructor(visiond, root, flags = [], startTimeoutMs = 300000) {
    this.visiond = visiond;
    this.root = root;
    this.flags = flags;
    this.startTimeoutMs = startTimeoutMs;
    this.log = '';
  }

  async start() {
    const dir = mkdtempSync(join(tmpdir(), 'visiond-ui-'));
    this.dir = dir;
    const config = join(dir, 'empty.conf');
    writeFileSync(config, '');
    const state = [];
    if (spawnSync(this.visiond, ['serve', '--help'], { encoding: 'utf8' }).stdout.includes('--data-dir')) {
      mkdirSync(join(dir, 'data'));
      state.push('--data-dir', join(dir, 'data'));
    }
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VISIOND_')));
    this.proc = spawn(this.visiond, ['serve', '--config', config, '--port', '0', '--models', 'models',
      '--workers', '2', ...state, ...this.flags], { cwd: this.root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`visiond did not start:\n${this.log}`)),
        this.startTimeoutMs);
      this.proc.stderr.setEncoding('utf8');
      this.proc.stderr.on('data', (chunk) => {
        this.log += chunk;
        const m = !this.port && this.log.match(LISTENING);
        if (m) {
          this.port = Number(m[2]);
          clearTimeout(timer);
          resolve();
        }
      });
      this.exited.then(({ code }) => {
        clearTimeout(timer);
        if (!this.port) reject(new Error(`visiond exited (${code}) before listening:\n${this.log}`));
      });
    });
    this.origin = `http://127.0.0.1:${this.port}`;
    return this;
  }

  // SIGTERM and wait; throws if it did not exit cleanly or a sanitizer reported anything.
  async stop() {
    if (!this.proc) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 60000);
    const { code, signal } = await this.exited;
    clearTimeout(timer);
    this.proc = null;
    rmSync(this.dir, { recursive: true, force: true });
    if (SANITIZER.test(this.log)) throw new Error(`sanitizer report:\n${this.log.slice(-4000)}`);
    if (code !== 0) throw new Error(`visiond exited with ${code ?? signal}:\n${this.log.slice(-4000)}`);
  }

  kill() {
    if (this.proc) this.proc.kill('SIGKILL');
  }

  // fetch() against the daemon; the answer with its body read as bytes.
  async request(path, init = {}) {
    const res = await fetch(this.origin + path, init);
    const body = Buffer.from(await res.arrayBuffer());
    let json = null;
    try { json = JSON.parse(body.toString('utf8')); } catch { json = null; }
    return { status: res.status, headers: res.headers, body, json };
  }

  // The answer to a POST whose Content-Length alone is refused (413): headers only, no body sent.
  refusedByLength(path, length) {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.port, path, method: 'POST',
        headers: { 'Content-Type': 'image/jpeg', 'Content-Length': length } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { body += c; });
        res.on('end', () => { req.destroy(); resolve({ status: res.statusCode, json: JSON.parse(body) }); });
      });
      req.on('error', reject);
      req.flushHeaders();
    });
  }

  // POST a multipart form: files is [[field, bytes, filename, type]], query an object.
  async post(path, files, query = {}, headers = {}) {
    const form = new FormData();
    for (const [field, bytes, name, type] of files) form.append(field, new Blob([bytes], { type }), name);
    const q = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
    return this.request(path + (q ? '?' + q : ''), { method: 'POST', body: form, headers });
  }
}
