// A tiny declarative validator for the parsed YAML tree (schema/*.ts): every check reports into
// one problem list and never stops at the first problem; the validated value's type is inferred
// from the declaration. This module gathers its parts for the section schemas.

export * from './schema/core.js';
export * from './schema/objects.js';
export * from './schema/formats.js';
export * from './schema/secrets.js';
export { suggest } from './schema/suggest.js';
