/* The questionnaire editor's row buttons, done in the page: add, remove and move a row without sending
   the form. Without this script the same buttons submit the form and the server does it (survey/editor.py).
   Each list is a <fieldset data-rows="<prefix>"> whose rows are named <prefix>-<n>-<field>; after every
   change the rows are numbered again so that the names keep the order shown. */
(function () {
  "use strict";

  function rename(row, prefix, n) {
    var pattern = new RegExp("^" + prefix.replace(/[-]/g, "\\-") + "-(\\d+|__n__)");
    var next = prefix + "-" + n;
    row.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach(function (el) {
      ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value && pattern.test(value)) { el.setAttribute(attr, value.replace(pattern, next)); }
      });
    });
    row.querySelectorAll("button[value]").forEach(function (button) {
      var verb = button.value.split(":")[0];
      button.value = verb + ":" + next;
    });
  }

  function renumber(list) {
    var prefix = list.getAttribute("data-rows");
    var rows = list.querySelectorAll(":scope > table > tbody > tr");
    rows.forEach(function (row, n) {
      rename(row, prefix, n);
      row.querySelector("button[value^='up:']").disabled = n === 0;
      row.querySelector("button[value^='down:']").disabled = n === rows.length - 1;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[name='row']");
    if (!button) { return; }
    var list = button.closest("fieldset[data-rows]");
    if (!list) { return; }
    event.preventDefault();
    var verb = button.value.split(":")[0];
    var body = list.querySelector(":scope > table > tbody");
    var row = button.closest("tr");
    var focus = button;
    if (verb === "add") {
      var blank = list.querySelector(":scope > template").content.firstElementChild.cloneNode(true);
      body.appendChild(blank);
      focus = blank.querySelector("input");
    } else if (verb === "remove") {
      var after = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      focus = after ? after.querySelector("button[value^='remove:']") : list.querySelector(".add-row");
    } else if (verb === "up" && row.previousElementSibling) {
      body.insertBefore(row, row.previousElementSibling);
    } else if (verb === "down" && row.nextElementSibling) {
      body.insertBefore(row.nextElementSibling, row);
    }
    renumber(list);
    if (focus && focus.disabled) { focus = row.querySelector("button[value^='remove:']"); }
    if (focus) { focus.focus(); }
  });
})();
