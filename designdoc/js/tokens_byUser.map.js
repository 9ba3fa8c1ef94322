function (doc) {
  // key = user name, value = {key: token document id, created, readonly}.
  if (!doc || doc.type !== 'token' || typeof doc.user !== 'string') {
    return;
  }
  emit(doc.user, {
    key: doc._id,
    created: doc.created === undefined ? null : doc.created,
    readonly: doc.readonly === true
  });
}
