/**
 * Jest snapshot serializer: asset hashes (64 hex chars, optionally with a file extension) change with
 * any handler or dependency change and differ across machines; replace them so snapshots only change
 * when the infrastructure does.
 */
const ASSET_HASH = /[0-9a-f]{64}/g;

module.exports = {
  test: (value) => typeof value === 'string' && /[0-9a-f]{64}/.test(value),
  serialize: (value, config, indentation, depth, refs, printer) =>
    printer(value.replace(ASSET_HASH, '[ASSET-HASH]'), config, indentation, depth, refs),
};
