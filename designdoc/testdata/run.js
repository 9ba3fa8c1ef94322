// Test runner for the design document functions (used by designdoc_test.go).
//
// One process serves every test case: starting Node once per case cost most
// of the package's test time. It reads one JSON request per line on stdin and
// answers each with one JSON line on stdout, in order:
//
//   {"mode":"syntax","src":...}   parse "var f = " + src as a script, like node --check
//   {"mode":"check","src":...}    evaluate the source, require a function
//   {"mode":"map","src":...,"input":"<document JSON>"}
//                                 answers {"emits":[[key, value], ...]}
//   {"mode":"vdu","src":...,"input":"<{newDoc, oldDoc, userCtx, secObj} JSON>"}
//                                 answers {"ok":true}, {"forbidden":"..."} or {"unauthorized":"..."}
//
// Each function runs in a fresh V8 context (like CouchDB's sandbox: no
// require, no process), evaluated as "(" + source + ")" the way CouchDB and
// PouchDB do; the input is parsed inside that context, so its objects belong
// to the function's realm. Anything else thrown answers {"error":"..."}.
'use strict';
var readline = require('readline');
var vm = require('vm');

// A function that loops forever fails its case instead of hanging the run.
var timeout = {timeout: 5000};

function run(req) {
  var src = String(req.src || '').trim();
  if (req.mode === 'syntax') {
    try {
      new vm.Script('var f = ' + src + ';\n', {filename: 'fn.js'});
      return {ok: true};
    } catch (e) {
      return {error: 'syntax: ' + String(e)};
    }
  }
  if (['check', 'map', 'vdu'].indexOf(req.mode) < 0) {
    return {error: 'unknown mode ' + JSON.stringify(req.mode)};
  }
  var emits = [];
  var sandbox = {
    emit: function (key, value) {
      // round-trip through JSON like CouchDB does when it stores rows
      emits.push(JSON.parse(JSON.stringify([key === undefined ? null : key, value === undefined ? null : value])));
    },
    log: function () {},
    __input: req.input === undefined ? '' : String(req.input)
  };
  vm.createContext(sandbox);
  try {
    sandbox.__fn = vm.runInContext('(' + src + ')', sandbox, {filename: 'fn.js', timeout: timeout.timeout});
  } catch (e) {
    return {error: 'compile: ' + String(e)};
  }
  if (typeof sandbox.__fn !== 'function') {
    return {error: 'source does not evaluate to a function'};
  }
  try {
    if (req.mode === 'check') {
      return {ok: true};
    }
    if (req.mode === 'map') {
      vm.runInContext('__fn(JSON.parse(__input))', sandbox, timeout);
      return {emits: emits};
    }
    vm.runInContext(
      'var __a = JSON.parse(__input);' +
      '__fn(__a.newDoc, __a.oldDoc === undefined ? null : __a.oldDoc,' +
      ' __a.userCtx || {db: "packages", name: null, roles: []}, __a.secObj || {})',
      sandbox, timeout);
    return {ok: true};
  } catch (e) {
    if (req.mode === 'vdu' && e && typeof e === 'object' && typeof e.forbidden === 'string') {
      return {forbidden: e.forbidden};
    }
    if (req.mode === 'vdu' && e && typeof e === 'object' && typeof e.unauthorized === 'string') {
      return {unauthorized: e.unauthorized};
    }
    return {error: String(e && e.stack || e)};
  }
}

var lines = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
lines.on('line', function (line) {
  var res;
  try {
    res = run(JSON.parse(line));
  } catch (e) {
    res = {error: 'runner: ' + String(e && e.stack || e)};
  }
  process.stdout.write(JSON.stringify(res) + '\n');
});
