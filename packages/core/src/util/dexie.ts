// Dexie's values, imported once for the whole package: bundlers keep one import statement
// per module that imports an external package.
export { default as Dexie, cmp, PropModification } from 'dexie'
