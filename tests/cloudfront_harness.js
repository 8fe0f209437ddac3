#!/usr/bin/env node
// Runs a CloudFront Function (viewer request) under Node for the tests.
// usage: node cloudfront_harness.js FUNCTION.js < cases.json > results.json
// stdin:  [{"uri": "/g/x", "querystring": {...}, "rawQueryString": "a=1"?}, ...]
// stdout: [{"result": <what handler returned>} | {"error": "..."}, ...] in input order.
// The function runs in a bare vm context: no require, no fetch, no process, no console,
// and each call is cut off after 100 ms, roughly the sandbox CloudFront gives it.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const fnPath = process.argv[2] || path.join(__dirname, '..', 'charters', 'cloudfront', 'guest_rewrite.js');
const source = fs.readFileSync(fnPath, 'utf8');
const cases = JSON.parse(fs.readFileSync(0, 'utf8'));

const context = vm.createContext({});
vm.runInContext(source, context, { filename: fnPath, timeout: 1000 });
if (typeof context.handler !== 'function') {
    throw new Error(`${fnPath} defines no function handler(event)`);
}

function eventFor(c) {
    const request = {
        method: c.method || 'GET',
        uri: c.uri,
        querystring: c.querystring || {},
        headers: { host: { value: 'queenofsandiego.com' } },
        cookies: {},
    };
    if (Object.prototype.hasOwnProperty.call(c, 'rawQueryString')) {
        const raw = c.rawQueryString === null ? undefined : c.rawQueryString;
        request.rawQueryString = () => raw;
    }
    return {
        version: '1.0',
        context: { eventType: 'viewer-request' },
        viewer: { ip: '1.2.3.4' },
        request,
    };
}

const results = cases.map((c) => {
    context.__event = eventFor(c);
    try {
        const out = vm.runInContext('handler(__event)', context, { timeout: 100 });
        return { result: out === undefined ? null : out };
    } catch (e) {
        return { error: String(e && e.stack ? e.stack : e) };
    } finally {
        delete context.__event;
    }
});
process.stdout.write(JSON.stringify(results));
