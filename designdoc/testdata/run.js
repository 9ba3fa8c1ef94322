// Test runner for the design document functions (used by designdoc_test.go).
//
//   node run.js check <file>   evaluate the source, require a function
//   node run.js map   <file>   stdin: a document; prints {"emits":[[key, value], ...]}
//   node run.js vdu   <file>   stdin: {"newDoc":..., "oldDoc":..., "userCtx":..., "secObj":...};
//                              prints {"ok":true}, {"forbidden":"..."} or {"unauthorized":"..."}
//
// The function runs in a fresh V8 context (like CouchDB's sandbox: no require,
// no process), evaluated as "(" + source + ")" the way CouchDB and PouchDB do.
// Anything else thrown is printed as {"error":"..."} with exit status 1.
'use strict';
var fs = require('fs');
var vm = require('vm');

function out(obj, code) {
  process.stdout.write(JSON.stringify(obj) + '\n');
  process.exitCode = code || 0;
}

var mode = process.argv[2];
var file = process.argv[3];
if (['check', 'map', 'vdu'].indexOf(mode) < 0 || !file) {
  out({error: 'usage: node run.js check|map|vdu <file>'}, 2);
  return;
}
var src = fs.readFileSync(file, 'utf8').trim();
var input = mode === 'check' ? '' : fs.readFileSync(0, 'utf8');

var emits = [];
var sandbox = {
  emit: function (key, value) {
    // round-trip through JSON like CouchDB does when it stores rows
    emits.push(JSON.parse(JSON.stringify([key === undefined ? null : key, value === undefined ? null : value])));
  },
  log: function () {},
  __input: input
};
vm.createContext(sandbox);

try {
  sandbox.__fn = vm.runInContext('(' + src + ')', sandbox, {filename: file});
} catch (e) {
  out({error: 'compile: ' + String(e)}, 1);
  return;
}
if (typeof sandbox.__fn !== 'function') {
  out({error: 'source does not evaluate to a function'}, 1);
  return;
}

try {
  if (mode === 'check') {
    out({ok: true});
  } else if (mode === 'map') {
    vm.runInContext('__fn(JSON.parse(__input))', sandbox);
    out({emits: emits});
  } else {
    vm.runInContext(
      'var __a = JSON.parse(__input);' +
      '__fn(__a.newDoc, __a.oldDoc === undefined ? null : __a.oldDoc,' +
      ' __a.userCtx || {db: "packages", name: null, roles: []}, __a.secObj || {})',
      sandbox);
    out({ok: true});
  }
} catch (e) {
  if (mode === 'vdu' && e && typeof e === 'object' && typeof e.forbidden === 'string') {
    out({forbidden: e.forbidden});
  } else if (mode === 'vdu' && e && typeof e === 'object' && typeof e.unauthorized === 'string') {
    out({unauthorized: e.unauthorized});
  } else {
    out({error: String(e && e.stack || e)}, 1);
  }
}
