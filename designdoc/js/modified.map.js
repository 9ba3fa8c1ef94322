function (doc) {
  // key = time.modified (ISO date string), value = package name.
  // Tombstones are included so that readers of this view see unpublishes too.
  if (!doc || typeof doc._id !== 'string' || doc._id.indexOf('_design/') === 0) {
    return;
  }
  if (typeof doc.name !== 'string' || !doc.time || typeof doc.time !== 'object') {
    return;
  }
  if (typeof doc.time.modified !== 'string' || doc.time.modified === '') {
    return;
  }
  emit(doc.time.modified, doc.name);
}
