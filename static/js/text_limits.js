/* Character counters for the text boxes of the complaint forms (every box with data-limit).
 * Only a help where JavaScript runs: the pages work without it, and the server checks the same limits
 * (counted the same way: a line break is one character, blanks at either end none) and never cuts text.
 * The words come from the form's data-counter / data-counter-over (translated by the page), the classes
 * from data-counter-class / data-counter-over-class. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-counter]");
  if (!form) { return; }
  function count(text) { return Array.from(text.replace(/\r\n/g, "\n").trim()).length; }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, name) { return String(values[name]); });
  }
  form.querySelectorAll("[data-limit]").forEach(function (box, i) {
    var limit = parseInt(box.getAttribute("data-limit"), 10);
    var counter = document.createElement("p");
    var always = box.tagName === "TEXTAREA";  // one-line boxes show theirs only near the limit
    counter.id = (box.id || "box" + i) + "-count";
    box.insertAdjacentElement("afterend", counter);
    var described = box.getAttribute("aria-describedby");
    box.setAttribute("aria-describedby", described ? described + " " + counter.id : counter.id);
    function update() {
      var n = count(box.value), over = n - limit;
      var values = {n: n, limit: limit, over: over};
      counter.hidden = !always && n < limit * 0.8;
      counter.className = "counter " + form.getAttribute(over > 0 ? "data-counter-over-class" : "data-counter-class");
      counter.textContent = fill(form.getAttribute(over > 0 ? "data-counter-over" : "data-counter"), values);
    }
    box.addEventListener("input", update);
    update();
  });
})();
