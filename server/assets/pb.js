/* Pulseboard tracking script: pageviews (SPA navigations included) and custom events.
   No cookies, no storage. Sends nothing under Do-Not-Track or Global Privacy Control
   unless data-respect-dnt="false". Served by Pulseboard at /pb.js. */
(function (w, d, n) {
  var s = d.currentScript;
  if (!s || !s.src) return;
  var endpoint = new URL(s.src).origin + '/collect';
  var site = s.getAttribute('data-site') || location.hostname;
  var off = s.getAttribute('data-respect-dnt') !== 'false' &&
    (n.doNotTrack === '1' || w.doNotTrack === '1' || n.globalPrivacyControl === true);
  var queued = (w.pulseboard && w.pulseboard.q) || [];
  var last = null;

  // Path and query; the hash only when it is a route (#/..., #!...), not an anchor.
  function here() {
    var h = location.hash;
    return location.pathname + location.search + (/^#!?\//.test(h) ? h : '');
  }

  function screenClass() {
    var x = (w.screen && w.screen.width) || w.innerWidth || 0;
    return x < 768 ? 'mobile' : x < 1024 ? 'tablet' : 'desktop';
  }

  function send(ev) {
    if (off) return;
    ev.site = site;
    ev.url = ev.url || here();
    ev.screen = screenClass();
    var body = JSON.stringify(ev);
    try {
      // A string body goes as text/plain: a "simple" request, no CORS preflight.
      if (n.sendBeacon && n.sendBeacon(endpoint, body)) return;
    } catch (e) {}
    try {
      fetch(endpoint, { method: 'POST', body: body, keepalive: true, credentials: 'omit' })
        .catch(function () {});
    } catch (e) {}
  }

  // A pageview when the URL changed: on load, pushState/replaceState, back/forward, hash routes.
  function page() {
    var url = here();
    if (url === last) return;
    var ref = last === null ? d.referrer : location.origin + last;
    last = url;
    var ev = { type: 'pageview', url: url };
    if (ref) ev.referrer = ref;
    send(ev);
  }

  // window.pulseboard('signup', {plan: 'pro'})
  function track(type, props) {
    if (typeof type !== 'string' || !type) return;
    var ev = { type: type };
    if (props && typeof props === 'object') ev.props = props;
    send(ev);
  }

  ['pushState', 'replaceState'].forEach(function (m) {
    var orig = w.history[m];
    w.history[m] = function () {
      var r = orig.apply(this, arguments);
      page();
      return r;
    };
  });
  w.addEventListener('popstate', page);
  w.addEventListener('hashchange', page);
  w.pulseboard = track;
  page();
  for (var i = 0; i < queued.length; i++) track.apply(null, queued[i]);
})(window, document, navigator);
