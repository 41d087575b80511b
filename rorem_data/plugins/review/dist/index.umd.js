// rorem-data review hotkeys: plain JS against the globals the FiftyOne App exposes (no build).
// In the sample modal: y = accept, n = reject, 1-5 = reject with a reason, u = undo.
(function () {
  if (window.__roremReviewHotkeys__) return;
  window.__roremReviewHotkeys__ = true;

  var OP = "@rorem-data/review/set_decision";
  var REASONS = ["object_visible", "hallucinated_object", "blurry_fill",
                 "artifacts_outside_mask", "bad_mask"];
  var LOCK_MS = 1500; // ignore repeated keys on the same sample until the modal moves on
  var pending = null;
  var shown = { id: null, t: 0 }; // when the open candidate was first shown (time per decision)
  setInterval(function () {
    var id = modalSampleId();
    if (id !== shown.id) shown = { id: id, t: Date.now() };
  }, 200);

  function modalSampleId() {
    return new URLSearchParams(window.location.search).get("id");
  }
  function typing(el) {
    if (!el) return false;
    var tag = (el.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable === true;
  }
  function params(key) {
    if (key === "y") return { decision: "accept" };
    if (key === "n") return { decision: "reject" };
    if (key === "u") return { decision: "clear", advance: false };
    var i = "12345".indexOf(key);
    if (i >= 0 && key.length === 1) return { decision: "reject", reason: REASONS[i] };
    return null;
  }
  function onKeyDown(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || typing(e.target)) return;
    var p = params(e.key);
    if (!p) return;
    var id = modalSampleId();
    if (!id) return; // grid: leave the key to the App
    var foo = window.__foo__;
    if (!foo || typeof foo.executeOperator !== "function") return;
    e.preventDefault();
    e.stopPropagation();
    var now = Date.now();
    if (pending && pending.id === id && now - pending.t < LOCK_MS) {
      window.__roremIgnoredKeys__ = (window.__roremIgnoredKeys__ || 0) + 1;
      return;
    }
    pending = { id: id, t: now };
    p.sample_id = id;
    if (shown.id === id) p.shown_at_ms = shown.t;
    if (p.advance === undefined) p.advance = true;
    foo.executeOperator(OP, p);
  }
  window.addEventListener("keydown", onKeyDown, true);
  console.info("[rorem-data] review keys: y accept, n reject, 1-5 reject with reason, u undo");
})();
