// Browser check of the VRS Federation HTML report, injected into a copy of the report by run.sh
// (the report itself has no scripts). It inspects the page after layout and writes one line per
// check, "@@PASS name" or "@@FAIL name: why", into a pre element with the id browser-check,
// which run.sh reads from --dump-dom.
// Mode "#narrow" (a phone-sized window) checks only that the page fits without sideways scrolling.
(function () {
  'use strict';
  var FIGURES = ['trend', 'flows', 'methods', 'fees', 'migrants', 'smugglers', 'deaths'];
  var GEOMETRY = ['x', 'y', 'width', 'height', 'cx', 'cy', 'r', 'x1', 'y1', 'x2', 'y2'];
  var lines = [];
  function check(name, why) {
    lines.push(why ? '@@FAIL ' + name + ': ' + why : '@@PASS ' + name);
  }
  function count(root, selector) {
    return root ? root.querySelectorAll(selector).length : 0;
  }

  function chartProblem(svg) {
    if (!svg) return 'no <svg role="img">';
    var box = svg.getBoundingClientRect();
    if (!(box.width > 100 && box.height > 40)) return 'svg laid out at ' + box.width + 'x' + box.height;
    var title = svg.querySelector('title');
    if (!(svg.getAttribute('aria-label') || '').trim() || !title || !title.textContent.trim()) {
      return 'no accessible name (aria-label and title)';
    }
    var marks = svg.querySelectorAll('.mark');
    if (marks.length === 0) return 'no data marks';
    var sized = 0;
    for (var i = 0; i < marks.length; i++) {
      var m = marks[i];
      var b = m.getBBox();
      if (![b.x, b.y, b.width, b.height].every(Number.isFinite)) return 'a mark has no finite box';
      if (b.width > 0 || b.height > 0) sized++;
      if (!m.querySelector('title')) return 'a mark has no <title>';
      var statuses = ['exact', 'noisy', 'partial', 'suppressed'].filter(function (c) { return m.classList.contains(c); });
      if (statuses.length !== 1) return 'a mark has no status class';
    }
    if (sized === 0) return 'no mark has a size';
    var all = svg.querySelectorAll('*');
    for (var j = 0; j < all.length; j++) {
      for (var k = 0; k < GEOMETRY.length; k++) {
        var v = all[j].getAttribute(GEOMETRY[k]);
        if (v !== null && !Number.isFinite(parseFloat(v))) {
          return '<' + all[j].tagName + '> ' + GEOMETRY[k] + '="' + v + '"';
        }
      }
      var d = all[j].getAttribute('d');
      if (d !== null && /nan|inf/i.test(d)) return 'path d="' + d.slice(0, 40) + '"';
    }
    return '';
  }

  function tableProblem(table) {
    if (!table) return 'no <table>';
    var caption = table.querySelector('caption');
    if (!caption || !caption.textContent.trim()) return 'no caption';
    if (count(table, 'thead th[scope="col"]') < 2) return 'no column headers';
    var rows = table.querySelectorAll('tbody tr');
    if (rows.length === 0) return 'no rows';
    for (var i = 0; i < rows.length; i++) {
      if (!rows[i].querySelector('th[scope="row"]')) return 'a row without a row header';
    }
    if (table.getBoundingClientRect().height < 20) return 'table not laid out';
    return '';
  }

  function fullChecks() {
    var tablePartial = 0, tableSuppressed = 0, markPartial = 0, markSuppressed = 0;
    var markNoisy = 0, errorBars = 0, errorBarProblem = '';
    FIGURES.forEach(function (id) {
      var sec = document.getElementById('fig-' + id);
      if (!sec) { check('figure ' + id, 'section missing'); return; }
      var svg = sec.querySelector('svg[role="img"]');
      var why = chartProblem(svg);
      check('chart ' + id + ' rendered (' + count(svg, '.mark') + ' marks)', why);
      check('table ' + id + ' accessible (' + count(sec, 'tbody tr') + ' rows)', tableProblem(sec.querySelector('table')));
      tablePartial += count(sec, 'td.partial');
      tableSuppressed += count(sec, 'td.suppressed');
      markPartial += count(svg, '.mark.partial');
      markSuppressed += count(svg, '.mark.suppressed');
      markNoisy += count(svg, '.mark.noisy');
      var bars = svg ? svg.querySelectorAll('.errorbar') : [];
      errorBars += bars.length;
      for (var b = 0; b < bars.length && !errorBarProblem; b++) {
        var box = bars[b].getBBox();
        if (![box.x, box.y, box.width, box.height].every(Number.isFinite)) errorBarProblem = id + ': an error bar has no finite box';
        else if (box.width <= 0 && box.height <= 0) errorBarProblem = id + ': an error bar has no length';
        else if (!bars[b].querySelector('title')) errorBarProblem = id + ': an error bar has no <title>';
      }
      // Bars and lines carry an error bar per noisy figure; the flow matrix gives it in words.
      if (svg && id !== 'flows' && count(svg, '.mark.noisy') > 0 && bars.length === 0 && !errorBarProblem) {
        errorBarProblem = id + ': noisy figures but no error bars';
      }
    });
    check('error bars drawn (' + errorBars + ') for noisy figures (' + markNoisy + ')',
      errorBarProblem || (markNoisy > 0 && errorBars === 0 ? 'noisy figures but no error bar' : ''));
    check('partial figures marked on charts (' + markPartial + ') and tables (' + tablePartial + ')',
      tablePartial > 0 && markPartial === 0 ? 'tables have lower bounds but no chart marks one' : '');
    check('suppressed figures marked on charts (' + markSuppressed + ') and tables (' + tableSuppressed + ')',
      tableSuppressed > 0 && markSuppressed === 0 ? 'tables have suppressed cells but no chart marks one' : '');
    var legend = document.getElementById('reading');
    var text = legend ? legend.textContent : '';
    check('legend explains partial and suppressed',
      /lower bound/i.test(text) && /suppressed/i.test(text) ? '' : 'no legend for partial and suppressed figures');
    check('legend explains noisy figures and their 95% intervals',
      /±/.test(text) && /95%/.test(text) && /not distinguishable from 0/i.test(text) ? '' : 'no legend for noisy figures');
    var status = document.querySelector('#status table');
    var badges = count(status, '.badge');
    check('node status shown (' + count(status, 'tbody tr') + ' nodes)',
      status && count(status, 'tbody tr') > 0 && badges > 0 ? '' : 'no node status table');
    check('no scripts in the report', document.scripts.length === 1 ? '' : (document.scripts.length - 1) + ' script elements');
    var fetched = performance.getEntriesByType('resource').map(function (e) { return e.name; });
    check('nothing fetched', fetched.length === 0 ? '' : fetched.slice(0, 3).join(' '));
    var external = [];
    var refs = document.querySelectorAll('[href], [src], [srcset], [data], [poster]');
    for (var i = 0; i < refs.length; i++) {
      ['href', 'src', 'srcset', 'data', 'poster'].forEach(function (a) {
        var v = refs[i].getAttribute(a);
        if (v !== null && v.charAt(0) !== '#') external.push(a + '=' + v);
      });
    }
    var css = Array.prototype.map.call(document.querySelectorAll('style, [style]'), function (e) {
      return e.tagName === 'STYLE' ? e.textContent : e.getAttribute('style');
    }).join(' ');
    (css.match(/url\(\s*['"]?[^#'"\s)][^)]*\)|@import/g) || []).forEach(function (u) { external.push(u); });
    check('no external references', external.length === 0 ? '' : external.slice(0, 3).join(' '));
  }

  try {
    if (location.hash === '#narrow') {
      var over = document.documentElement.scrollWidth - window.innerWidth;
      check('fits a ' + window.innerWidth + ' px wide window', over > 1 ? 'overflows by ' + over + ' px' : '');
      var small = Array.prototype.filter.call(document.querySelectorAll('svg.chart'), function (s) {
        return s.getBoundingClientRect().width > window.innerWidth;
      });
      check('charts shrink to the window', small.length ? small.length + ' charts wider than the window' : '');
    } else {
      fullChecks();
    }
  } catch (e) {
    check('checker ran', String(e && e.message || e));
  }
  var pre = document.createElement('pre');
  pre.id = 'browser-check';
  pre.textContent = lines.join('\n');
  document.body.appendChild(pre);
})();
