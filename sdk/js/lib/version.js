'use strict';
/** The package version, sent in every request's User-Agent (a test keeps it equal to package.json's). */
module.exports = { VERSION: '0.1.0' };
