function (doc) {
  // key = maintainer name, value = package name; live packuments only.
  if (!doc || typeof doc._id !== 'string' || doc._id.indexOf('_design/') === 0) {
    return;
  }
  if (typeof doc.name !== 'string' || !doc.versions || typeof doc.versions !== 'object') {
    return;
  }
  if (doc.time && typeof doc.time === 'object' && doc.time.unpublished) {
    return;
  }
  var any = false;
  for (var v in doc.versions) {
    if (Object.prototype.hasOwnProperty.call(doc.versions, v)) {
      any = true;
      break;
    }
  }
  if (!any) {
    return;
  }
  var m = doc.maintainers;
  if (Object.prototype.toString.call(m) !== '[object Array]') {
    return;
  }
  var seen = {};
  for (var i = 0; i < m.length; i++) {
    var name = m[i] && typeof m[i] === 'object' ? m[i].name : null;
    if (typeof name !== 'string' || name === '' || Object.prototype.hasOwnProperty.call(seen, name)) {
      continue;
    }
    seen[name] = true;
    emit(name, doc.name);
  }
}
