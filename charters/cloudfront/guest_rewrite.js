// Guest-page rewrite: CloudFront Function, runtime cloudfront-js-2.0, viewer request.
// Pages live in S3 at guest-pages/{slug}.html; guests get /g/{slug}. Slug: [a-z0-9-]{1,64}.
//
//   /g/{slug}, /g/{slug}/        -> uri /guest-pages/{slug}.html (one trailing slash allowed)
//   slug with upper case letters -> 301 to /g/{lower-case slug} (canonical URL, one cache
//                                   key per page); the query string is carried over
//   /g/, /g//, /g/a/b, /g/.., %-escapes, '.', '_' or any char outside the alphabet,
//   more than 64 chars           -> 404 generated here, nothing reaches S3
//   anything not under /g/ (including /g itself) -> passed through unchanged
// The query string is never touched on a rewrite (CloudFront keeps it in
// request.querystring; the uri has none). Location headers are relative paths built
// only from the validated slug, never from the Host header, so they cannot open-redirect.
// The photo presign route (/g/{id}/presign) is served by the API, not through this function.

var PREFIX = '/g/';
var SLUG_ANY_CASE = /^[A-Za-z0-9-]{1,64}$/;

function notFound() {
    return { statusCode: 404, statusDescription: 'Not Found' };
}

function queryString(request) {
    // rawQueryString() (runtime 2.0) gives the query exactly as the viewer sent it.
    var raw = typeof request.rawQueryString === 'function' ? request.rawQueryString() : undefined;
    if (raw) {
        return '?' + raw;
    }
    var parts = [];
    var qs = request.querystring || {};
    for (var key in qs) {
        var item = qs[key];
        if (item.multiValue) {
            for (var i = 0; i < item.multiValue.length; i++) {
                parts.push(key + '=' + item.multiValue[i].value);
            }
        } else {
            parts.push(item.value === '' ? key : key + '=' + item.value);
        }
    }
    return parts.length ? '?' + parts.join('&') : '';
}

function handler(event) {
    var request = event.request;
    var uri = request.uri;
    if (uri.indexOf(PREFIX) !== 0) {
        return request;
    }
    var slug = uri.substring(PREFIX.length);
    if (slug.charAt(slug.length - 1) === '/') {
        slug = slug.substring(0, slug.length - 1);
    }
    if (!SLUG_ANY_CASE.test(slug)) {
        return notFound();
    }
    var lower = slug.toLowerCase();
    if (lower !== slug) {
        return {
            statusCode: 301,
            statusDescription: 'Moved Permanently',
            headers: {
                location: { value: PREFIX + lower + queryString(request) },
                'cache-control': { value: 'public, max-age=86400' }
            }
        };
    }
    request.uri = '/guest-pages/' + slug + '.html';
    return request;
}
