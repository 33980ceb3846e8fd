// ringrl JavaScript runner: a pre-started, single-use node process.
//
// Node cannot fork, so the warm pool keeps a few of these started ahead of time (inside
// bubblewrap, with rlimits set by prlimit before node starts). Each waits, blocked, for one
// request on fd 3, writes the program's files into its fresh working directory and runs the
// program as the main CommonJS module. The program and its tests (the epilogue) are compiled
// from memory: main.js on disk holds only the program, so reading it reveals no test secrets.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');

// fd 4 tells the host "started" now and carries requested files back at exit.
fs.writeSync(4, 'ready\n');
let request;
try {
  request = JSON.parse(fs.readFileSync(3, 'utf8'));
  fs.closeSync(3);
} catch (error) {
  process.stderr.write(`ringrl runner: no request on fd 3 (${error.message})\n`);
  process.exit(70);
}
const dir = request.workdir;
process.chdir(dir);
// Relative names live in the working directory; absolute ones under /tmp or /dev/shm are used as
// they are inside a private namespace (direct), any other absolute name is mapped under the directory.
function place(name) {
  if (name.startsWith('/')) {
    const p = path.normalize(name);
    if (request.direct && ['/tmp/', '/dev/shm/', dir + '/'].some((root) => p.startsWith(root))) return p;
    name = p.replace(/^\/+/, '');
  }
  const target = path.resolve(dir, name);
  return target.startsWith(dir + path.sep) ? target : null;
}
for (const [name, b64] of Object.entries(request.files || {})) {
  const target = place(name);
  if (!target) {
    process.stderr.write(`ringrl runner: file name escapes the working directory: ${name}\n`);
    process.exit(70);
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, Buffer.from(b64, 'base64'));
}
const fetchFiles = request.fetch_files || [];
const places = fetchFiles.map(place);
process.on('exit', () => {
  const files = {};
  fetchFiles.forEach((name, i) => {
    try {
      const target = places[i];
      if (target && fs.statSync(target).size <= 1 << 20) files[name] = fs.readFileSync(target).toString('base64');
    } catch {}
  });
  try {
    fs.writeSync(4, JSON.stringify(files) + '\n');
  } catch {}
});
const filename = path.join(dir, request.source || 'main.js');
fs.writeFileSync(filename, request.code);
const source = request.code + (request.epilogue ? '\n;' + request.epilogue : '');
request = undefined;
const main = new Module(filename, null);
main.filename = filename;
main.id = '.';
main.paths = Module._nodeModulePaths(dir);
process.mainModule = main;
process.argv = [process.argv[0], filename];
main._compile(source, filename);
main.loaded = true;
