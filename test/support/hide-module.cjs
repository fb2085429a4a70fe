// Preloaded with `node --require` to simulate npm packages missing from node_modules (a tree
// installed before they were added): require() of a package named in KERF_TEST_HIDE_MODULES
// (comma-separated) fails as a missing package does. Tests only.
const Module = require('node:module');
const hidden = new Set((process.env.KERF_TEST_HIDE_MODULES || '').split(',').filter(Boolean));
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (hidden.has(request)) {
    const e = new Error(`Cannot find module '${request}'`);
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }
  return resolve.call(this, request, ...rest);
};
