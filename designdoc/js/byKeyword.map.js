function (doc) {
  // key = lowercased keyword, value = package name. Keywords come from the
  // latest version's manifest and the root (hoisted) keywords, deduplicated.
  // A keywords string (old packages) is split on commas and white space.
  var hasOwn = Object.prototype.hasOwnProperty;
  var toStr = Object.prototype.toString;
  if (!doc || typeof doc._id !== 'string' || doc._id.indexOf('_design/') === 0) {
    return;
  }
  if (typeof doc.name !== 'string' || !doc.versions || typeof doc.versions !== 'object') {
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
      if (!hasOwn.call(versions, v)) {
        continue;
      }
      if (latest === null || String(time[v] || '') >= String(time[latest] || '')) {
        latest = v;
      }
    }
  }
  if (latest === null) {
    return;
  }
  var manifest = versions[latest] && typeof versions[latest] === 'object' ? versions[latest] : {};
  var seen = {};
  function add(list) {
    if (typeof list === 'string') {
      list = list.split(/[\s,]+/);
    }
    if (toStr.call(list) !== '[object Array]') {
      return;
    }
    for (var i = 0; i < list.length; i++) {
      if (typeof list[i] !== 'string') {
        continue;
      }
      var k = list[i].replace(/^\s+|\s+$/g, '').toLowerCase();
      if (k === '' || hasOwn.call(seen, k)) {
        continue;
      }
      seen[k] = true;
      emit(k, doc.name);
    }
  }
  add(manifest.keywords);
  add(doc.keywords);
}
