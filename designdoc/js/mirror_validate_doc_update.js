function (newDoc, oldDoc, userCtx, secObj) {
  // The mirror database takes whatever upstream has, except design
  // documents: an upstream validate_doc_update replicated in would take
  // effect here and could block every later write. Only couchnpm's own
  // mirror design document (stamped by its installer) may be written.
  if (newDoc._id.indexOf('_design/') !== 0) {
    return;
  }
  if (newDoc._deleted) {
    if (userCtx.roles.indexOf('_admin') === -1) {
      throw ({forbidden: 'only admins may delete design documents'});
    }
    return;
  }
  if (newDoc.couchnpm_role !== 'mirror' || (userCtx.db && newDoc.couchnpm_db !== userCtx.db)) {
    throw ({forbidden: 'design documents from upstream are not accepted in the mirror database'});
  }
}
