function (doc) {
  // One row per live packument: key = package name, value = null.
  // Skips design documents and tombstones (time.unpublished set, or no versions).
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
  emit(doc.name, null);
}
