// Copy buttons beside what a page offers to copy (a write key, a snippet). They stay
// hidden where a page may not write to the clipboard (plain http other than localhost):
// there the text is selected and copied by hand.
(function () {
  "use strict";
  if (!window.isSecureContext || !navigator.clipboard) { return; }
  var buttons = document.querySelectorAll("button[data-copy]");
  Array.prototype.forEach.call(buttons, function (button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source) { return; }
    var label = button.textContent;
    button.hidden = false;
    button.setAttribute("aria-controls", source.id);
    button.addEventListener("click", function () {
      var text = source.tagName === "INPUT" ? source.value : source.textContent;
      navigator.clipboard.writeText(text).then(function () {
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = label; }, 2000);
      }, function () {
        button.textContent = "Select and copy by hand";
      });
    });
  });
}());
