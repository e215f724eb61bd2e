// Loaded before the ipywidgets renderer (html-manager's embed-amd.js) on the pages with saved widget state.
(function () {
  // 1. The renderer finds its icon fonts beside the AMD module that asks for them, and the modules are named
  //    "@jupyter-widgets/...": give each name this site's copy, so the fonts load from _static/vendor/html-manager/.
  var here = new URL("vendor/html-manager/", document.currentScript.src).href;
  var paths = {"@jupyter-widgets/html-manager/dist": here.replace(/\/$/, "")};
  ["base", "base7", "controls", "controls7", "html-manager", "output"].forEach(function (name) {
    paths["@jupyter-widgets/" + name] = here + name;
  });
  window.require.config({paths: paths});
  // 2. ipywidgets typesets a widget's label with MathJax 2's MathJax.Hub.Queue; the pages load MathJax 3.
  document.addEventListener("DOMContentLoaded", function () {  // MathJax (deferred) has run; widgets render on load
    if (window.MathJax && !window.MathJax.Hub) {
      window.MathJax.Hub = {Queue: function (call) {
        window.MathJax.startup.promise.then(function () { return window.MathJax.typesetPromise([call[2]]); });
      }};
    }
  });
})();
