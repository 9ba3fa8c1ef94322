function (doc) {
  // Private packages only: key = the name of a package the latest version
  // depends on (dependencies, optionalDependencies, peerDependencies; not
  // devDependencies), value = {name, restricted}. Readers check that the
  // caller may read a restricted dependent before showing it.
  // Skips design documents and tombstones.
  var hasOwn = Object.prototype.hasOwnProperty;
  if (!doc || typeof doc._id !== 'string' || doc._id.indexOf('_design/') === 0) {
    return;
  }
  if (typeof doc.name !== 'string' || doc.name === '' || !doc.versions || typeof doc.versions !== 'object') {
    return;
  }
  if (doc.time && typeof doc.time === 'object' && doc.time.unpublished) {
    return;
  }
  var versions = doc.versions;
  var time = doc.time && typeof doc.time === 'object' ? doc.time : {};
  var tags = doc['dist-tags'] && typeof doc['dist-tags'] === 'object' ? doc['dist-tags'] : {};
  var latest = null;
  if (typeof tags.latest === 'string' && hasOwn.call(versions, tags.latest)) {
    latest = tags.latest;
  } else {
    for (var v in versions) {
      if (hasOwn.call(versions, v) && (latest === null || String(time[v] || '') >= String(time[latest] || ''))) {
        latest = v;
      }
    }
  }
  if (latest === null || !versions[latest] || typeof versions[latest] !== 'object') {
    return;
  }
  var manifest = versions[latest];
  var value = {name: doc.name, restricted: doc.access === 'restricted'};
  var seen = {};
  var kinds = ['dependencies', 'optionalDependencies', 'peerDependencies'];
  var n = 0;
  for (var k = 0; k < kinds.length; k++) {
    var deps = manifest[kinds[k]];
    if (!deps || typeof deps !== 'object' || Object.prototype.toString.call(deps) === '[object Array]') {
      continue;
    }
    for (var dep in deps) {
      if (!hasOwn.call(deps, dep) || hasOwn.call(seen, dep) || dep === '' || dep.length > 214) {
        continue;
      }
      seen[dep] = true;
      if (++n > 1000) {
        return;
      }
      emit(dep, value);
    }
  }
}
