function (newDoc, oldDoc, userCtx, secObj) {
  // Second line of defence for the private "packages" database. The Go
  // service validates every write first; this catches its bugs and foreign
  // writers. Violations throw {forbidden: message}.
  var hasOwn = Object.prototype.hasOwnProperty;
  var toStr = Object.prototype.toString;
  // semver 2.0.0 (https://semver.org), no leading "v", no surrounding space
  var SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

  function forbid(msg) {
    throw ({forbidden: msg});
  }
  function isArray(x) {
    return toStr.call(x) === '[object Array]';
  }
  function isObject(x) {
    return x !== null && typeof x === 'object' && !isArray(x);
  }
  function has(o, k) {
    return o !== null && o !== undefined && hasOwn.call(o, k);
  }
  function keys(o) {
    var r = [];
    for (var k in o) {
      if (hasOwn.call(o, k)) {
        r.push(k);
      }
    }
    return r;
  }
  function nonEmptyString(x) {
    return typeof x === 'string' && x.length > 0;
  }
  function q(x) {
    return JSON.stringify(x === undefined ? null : x);
  }
  // deepEqual compares JSON values; object key order does not matter.
  function deepEqual(a, b) {
    if (a === b) {
      return true;
    }
    if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
      return false;
    }
    var i;
    if (isArray(a) || isArray(b)) {
      if (!isArray(a) || !isArray(b) || a.length !== b.length) {
        return false;
      }
      for (i = 0; i < a.length; i++) {
        if (!deepEqual(a[i], b[i])) {
          return false;
        }
      }
      return true;
    }
    var ka = keys(a);
    var kb = keys(b);
    if (ka.length !== kb.length) {
      return false;
    }
    for (i = 0; i < ka.length; i++) {
      if (!hasOwn.call(b, ka[i]) || !deepEqual(a[ka[i]], b[ka[i]])) {
        return false;
      }
    }
    return true;
  }
  // without returns a shallow copy of o without key k.
  function without(o, k) {
    var r = {};
    var ks = keys(o);
    for (var i = 0; i < ks.length; i++) {
      if (ks[i] !== k) {
        r[ks[i]] = o[ks[i]];
      }
    }
    return r;
  }

  // withoutNewSignatures drops dist.signatures from version m when the
  // stored version had none: a version published before registry
  // signatures may be signed once (couchnpm keys sign-existing); signatures
  // it has can never change.
  function withoutNewSignatures(m, oldM) {
    if (!isObject(m.dist) || !has(m.dist, 'signatures') || !isObject(oldM) || !isObject(oldM.dist) || has(oldM.dist, 'signatures')) {
      return m;
    }
    if (!isArray(m.dist.signatures) || m.dist.signatures.length === 0) {
      return m;
    }
    var r = without(m, 'dist');
    r.dist = without(m.dist, 'signatures');
    return r;
  }

  // 1. design documents
  if (typeof newDoc._id === 'string' && newDoc._id.indexOf('_design/') === 0) {
    return;
  }

  // 2. deletion: server admins only (unpublish writes a tombstone instead)
  if (newDoc._deleted === true) {
    var roles = userCtx && isArray(userCtx.roles) ? userCtx.roles : [];
    for (var r = 0; r < roles.length; r++) {
      if (roles[r] === '_admin') {
        return;
      }
    }
    forbid('only a server admin may delete a package document (unpublish writes a tombstone instead)');
  }
  // Re-creating a deleted document: treat it as new.
  if (oldDoc && oldDoc._deleted === true) {
    oldDoc = null;
  }

  // 3. name and _id
  var id = newDoc._id;
  if (!nonEmptyString(id)) {
    forbid('_id must be a non-empty string');
  }
  if (newDoc.name !== id) {
    forbid('name must equal _id (name ' + q(newDoc.name) + ', _id ' + q(id) + ')');
  }
  if (id.length > 214) {
    forbid('package name ' + q(id) + ' is longer than 214 characters');
  }
  if (!oldDoc && id !== id.toLowerCase()) {
    forbid('new package names must be lowercase: ' + q(id));
  }

  var versions = newDoc.versions;
  if (!isObject(versions)) {
    forbid('versions must be an object');
  }
  var time = newDoc.time;
  if (!isObject(time)) {
    forbid('time must be an object');
  }
  var tags = newDoc['dist-tags'];
  if (!isObject(tags)) {
    forbid('dist-tags must be an object');
  }
  var oldVersions = oldDoc && isObject(oldDoc.versions) ? oldDoc.versions : {};
  var oldTime = oldDoc && isObject(oldDoc.time) ? oldDoc.time : {};
  var i, k;

  // A merge of conflicting revisions (registry/conflicts.go) may replace a
  // version published twice with different content by the earlier publish,
  // and only when the document reports the replaced one.
  function mergeReplaced(v) {
    var c = isObject(newDoc.couchnpm) && isArray(newDoc.couchnpm.conflicts) ? newDoc.couchnpm.conflicts : [];
    var oldM = oldVersions[v], newM = versions[v];
    if (!isObject(oldM) || !isObject(oldM.dist) || !isObject(newM) || !isObject(newM.dist)) {
      return false;
    }
    if (!(typeof time[v] === 'string' && typeof oldTime[v] === 'string' && time[v] <= oldTime[v])) {
      return false;
    }
    for (var j = 0; j < c.length; j++) {
      if (isObject(c[j]) && c[j].version === v && c[j].dropped === oldM.dist.integrity && c[j].kept === newM.dist.integrity) {
        return true;
      }
    }
    return false;
  }

  // 6. time: created never changes; old entries (except modified and
  //    unpublished) stay forever, so a version number is burned for good.
  if (has(oldTime, 'created') && !deepEqual(time.created, oldTime.created)) {
    forbid('time.created can never change (was ' + q(oldTime.created) + ', now ' + q(time.created) + ')');
  }
  var oldTimeKeys = keys(oldTime);
  for (i = 0; i < oldTimeKeys.length; i++) {
    k = oldTimeKeys[i];
    if (k === 'modified' || k === 'unpublished') {
      continue;
    }
    if (!has(time, k)) {
      forbid('time[' + q(k) + '] may not be removed: time entries are permanent so version numbers stay burned');
    }
    if (!deepEqual(time[k], oldTime[k]) && !mergeReplaced(k)) {
      forbid('time[' + q(k) + '] may not change (was ' + q(oldTime[k]) + ', now ' + q(time[k]) + '): a published version number can never be reused');
    }
  }

  // 4. and 7. versions
  var versionKeys = keys(versions);
  for (i = 0; i < versionKeys.length; i++) {
    k = versionKeys[i];
    if (!SEMVER.test(k)) {
      forbid('version ' + q(k) + ' is not a valid semver 2.0 version');
    }
    var m = versions[k];
    if (!isObject(m)) {
      forbid('versions[' + q(k) + '] must be an object');
    }
    if (m.version !== k) {
      forbid('versions[' + q(k) + '].version must be ' + q(k) + ', not ' + q(m.version));
    }
    if (m.name !== id) {
      forbid('versions[' + q(k) + '].name must be ' + q(id) + ', not ' + q(m.name));
    }
    if (!isObject(m.dist) || !nonEmptyString(m.dist.tarball) || !nonEmptyString(m.dist.shasum)) {
      forbid('versions[' + q(k) + '].dist must have a tarball and a shasum');
    }
    if (has(oldVersions, k)) {
      if ((!isObject(oldVersions[k]) || !deepEqual(withoutNewSignatures(without(m, 'deprecated'), oldVersions[k]), without(oldVersions[k], 'deprecated'))) && !mergeReplaced(k)) {
        forbid('version ' + k + ' is already published; only its "deprecated" field may change');
      }
    } else {
      if (has(oldTime, k)) {
        forbid('version ' + k + ' was published before and unpublished; a version number can never be reused');
      }
      if (!nonEmptyString(m.dist.integrity)) {
        forbid('new version ' + k + ' must have dist.integrity');
      }
      if (!nonEmptyString(time[k])) {
        forbid('new version ' + k + ' must have a time[' + q(k) + '] entry');
      }
    }
  }

  // 5. dist-tags
  if (versionKeys.length > 0 && !has(tags, 'latest')) {
    forbid('dist-tags must contain "latest" while the package has versions');
  }
  var tagKeys = keys(tags);
  for (i = 0; i < tagKeys.length; i++) {
    var target = tags[tagKeys[i]];
    if (typeof target !== 'string' || !has(versions, target)) {
      forbid('dist-tag ' + q(tagKeys[i]) + ' points to ' + q(target) + ', which is not a version of ' + id);
    }
  }

  // 8. maintainers (may be absent only when there are no versions, e.g. a tombstone)
  var maintainers = newDoc.maintainers;
  if (maintainers !== undefined || versionKeys.length > 0) {
    if (!isArray(maintainers)) {
      forbid('maintainers must be an array');
    }
    for (i = 0; i < maintainers.length; i++) {
      if (!isObject(maintainers[i]) || !nonEmptyString(maintainers[i].name)) {
        forbid('maintainers[' + i + '] must be an object with a non-empty string name');
      }
    }
    if (versionKeys.length > 0 && maintainers.length === 0) {
      forbid('a package with versions must have at least one maintainer');
    }
  }

  // 9. users (stars)
  if (newDoc.users !== undefined) {
    if (!isObject(newDoc.users)) {
      forbid('users must be an object');
    }
    var userKeys = keys(newDoc.users);
    for (i = 0; i < userKeys.length; i++) {
      if (typeof newDoc.users[userKeys[i]] !== 'boolean') {
        forbid('users[' + q(userKeys[i]) + '] must be true or false');
      }
    }
  }

  // 10. attachments (tarballs) never change once stored; removal is allowed
  var newAtts = newDoc._attachments;
  if (newAtts !== undefined && !isObject(newAtts)) {
    forbid('_attachments must be an object');
  }
  var oldAtts = oldDoc && isObject(oldDoc._attachments) ? oldDoc._attachments : {};
  var oldAttKeys = keys(oldAtts);
  var pkgBase = id.indexOf('/') >= 0 ? id.substring(id.indexOf('/') + 1) : id;
  // The tarball of a version a merge replaced (see mergeReplaced) is the
  // earlier publish's: the one attachment that may be uploaded again.
  function mergeReplacedTarball(att) {
    var vs = keys(versions);
    for (var j = 0; j < vs.length; j++) {
      if (att === pkgBase + '-' + vs[j] + '.tgz' && mergeReplaced(vs[j])) {
        return true;
      }
    }
    return false;
  }
  for (i = 0; i < oldAttKeys.length; i++) {
    k = oldAttKeys[i];
    if (!newAtts || !has(newAtts, k) || mergeReplacedTarball(k)) {
      continue;
    }
    var a = newAtts[k];
    var o = oldAtts[k];
    if (!isObject(a)) {
      forbid('_attachments[' + q(k) + '] must be an object');
    }
    if (has(a, 'data')) {
      forbid('attachment ' + q(k) + ' already exists and may not be uploaded again');
    }
    if (has(a, 'digest') && isObject(o) && a.digest !== o.digest) {
      forbid('attachment ' + q(k) + ' may not change (digest ' + q(o.digest) + ' became ' + q(a.digest) + ')');
    }
    if (has(a, 'length') && isObject(o) && has(o, 'length') && a.length !== o.length) {
      forbid('attachment ' + q(k) + ' may not change (length ' + q(o.length) + ' became ' + q(a.length) + ')');
    }
    // CouchDB merges real stubs with the stored attachment before validation
    // (so they keep their revpos) but shows newly sent data as a stub without
    // digest and with revpos 0; a differing revpos therefore means new data.
    if (has(a, 'revpos') && isObject(o) && has(o, 'revpos') && a.revpos !== o.revpos) {
      forbid('attachment ' + q(k) + ' already exists and may not be uploaded again (revpos ' + q(o.revpos) + ' became ' + q(a.revpos) + ')');
    }
  }
}
