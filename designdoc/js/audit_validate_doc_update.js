function (newDoc, oldDoc, userCtx, secObj) {
  // The audit log is append-only: an entry is created once and never
  // changed or deleted, by anyone (the service writes as a CouchDB admin,
  // so this guards against accidents and careless scripts; the hash chain,
  // checked by "couchnpm audit-log verify", shows deliberate tampering by
  // someone who removes this function first).
  function forbid(msg) {
    throw ({forbidden: msg});
  }
  if (oldDoc) {
    forbid('audit entries are append-only: ' + newDoc._id + ' exists and cannot be changed or deleted');
  }
  if (newDoc._deleted) {
    forbid('audit entries are append-only: they cannot be deleted');
  }
  var HEX = /^[0-9a-f]{64}$/;
  if (typeof newDoc.chain !== 'string' || newDoc.chain === '' || newDoc.chain.indexOf(':') >= 0) {
    forbid('an audit entry needs its chain');
  }
  if (typeof newDoc.seq !== 'number' || newDoc.seq < 1 || Math.floor(newDoc.seq) !== newDoc.seq) {
    forbid('an audit entry needs a whole seq of at least 1');
  }
  var seq = String(newDoc.seq);
  while (seq.length < 12) {
    seq = '0' + seq;
  }
  if (newDoc._id !== newDoc.chain + ':' + seq) {
    forbid('an audit entry\'s id is its chain and zero-padded seq: ' + newDoc.chain + ':' + seq);
  }
  if (typeof newDoc.hash !== 'string' || !HEX.test(newDoc.hash)) {
    forbid('an audit entry needs its hash');
  }
  if (typeof newDoc.prev !== 'string' || (newDoc.prev !== '' && !HEX.test(newDoc.prev))) {
    forbid('an audit entry needs prev, the hash of the entry before it, or ""');
  }
  if (typeof newDoc.action !== 'string' || newDoc.action === '' || typeof newDoc.at !== 'string') {
    forbid('an audit entry needs its action and time');
  }
}
