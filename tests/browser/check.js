// Browser check of the VRS Federation HTML report, injected into a copy of the report by run.sh
// (the report itself has no scripts). It inspects the page after layout and writes one line per
// check, "@@PASS name" or "@@FAIL name: why", into a pre element with the id browser-check,
// which run.sh reads from --dump-dom.
// Mode "#narrow" (a phone-sized window) checks that the page fits without sideways scrolling and
// that each chart was re-laid out for the window (one visible chart per figure, labels of 10 px or
// more), not shrunk.
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
  function visible(el) {
    var b = el.getBoundingClientRect();
    return b.width > 0 && b.height > 0;
  }
  // The chart a reader sees: the page carries a wide and a narrow layout and shows one.
  function shownCharts(sec) {
    return sec ? Array.prototype.filter.call(sec.querySelectorAll('svg[role="img"]'), visible) : [];
  }

  // Lines never join a lower bound: every vertex of every line lies on a drawn figure (exact,
  // noisy, or none reported) of its own series, never on a partial or suppressed mark.
  function lineProblem(svg) {
    var series = svg.querySelectorAll('g.series');
    for (var s = 0; s < series.length; s++) {
      var pts = Array.prototype.map.call(series[s].querySelectorAll('circle'), function (c) {
        var owner = c.closest('.mark, .point');
        return { x: parseFloat(c.getAttribute('cx')), y: parseFloat(c.getAttribute('cy')),
          cls: owner ? owner.getAttribute('class') : '' };
      });
      var paths = series[s].querySelectorAll('path.line');
      for (var p = 0; p < paths.length; p++) {
        var nums = (paths[p].getAttribute('d') || '').match(/-?[0-9.]+/g) || [];
        for (var i = 0; i + 1 < nums.length; i += 2) {
          var x = parseFloat(nums[i]), y = parseFloat(nums[i + 1]);
          var at = pts.filter(function (q) { return Math.abs(q.x - x) < 0.2 && Math.abs(q.y - y) < 0.2; });
          if (at.length === 0) return 'a line vertex (' + x + ', ' + y + ') is on no point';
          var bad = at.filter(function (q) { return /partial|suppressed/.test(q.cls); });
          if (bad.length) return 'a line reaches a lower bound at (' + x + ', ' + y + ')';
        }
      }
    }
    return '';
  }

  // sRGB "rgb(r, g, b)" or "#rrggbb" to CIELAB, and the CIE76 difference.
  function lab(colour) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour);
    var rgb = m ? [1, 2, 3].map(function (i) { return parseInt(m[i], 16); })
      : (colour.match(/[0-9.]+/g) || []).slice(0, 3).map(Number);
    var lin = rgb.map(function (v) { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    var X = (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047;
    var Y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
    var Z = (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883;
    var f = function (t) { return t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116; };
    return [116 * f(Y) - 16, 500 * (f(X) - f(Y)), 200 * (f(Y) - f(Z))];
  }
  function deltaE(a, b) {
    var p = lab(a), q = lab(b);
    return Math.sqrt(Math.pow(p[0] - q[0], 2) + Math.pow(p[1] - q[1], 2) + Math.pow(p[2] - q[2], 2));
  }

  // The CSV a table's link carries (a data: URL), parsed into rows of fields (no quoted commas
  // occur in the report's keys; quotes are stripped).
  function linkedCsv(sec) {
    var a = sec.querySelector('a[download][href^="data:text/csv"]');
    if (!a) return null;
    var href = a.getAttribute('href');
    var text = decodeURIComponent(href.slice(href.indexOf(',') + 1));
    return text.split(/\r?\n/).filter(function (l) { return l.length; }).map(function (l) {
      return l.split(',').map(function (f) { return f.replace(/^"|"$/g, ''); });
    });
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
      var charts = shownCharts(sec);
      var svg = charts[0] || null;
      var why = charts.length > 1 ? charts.length + ' charts shown' : chartProblem(svg);
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
      // Lines and grouped bars carry an error bar per noisy figure, a stacked bar on its total
      // (none when the total is a lower bound); the flow matrix gives it in words.
      var groups = svg ? svg.querySelectorAll('g.category') : [];
      var needsBar = groups.length === 0 ? count(svg, '.mark.noisy') > 0
        : Array.prototype.some.call(groups, function (g) {
          return count(g, '.mark.noisy') > 0 && count(g, '.mark.partial, .mark.suppressed') === 0;
        });
      if (svg && id !== 'flows' && needsBar && bars.length === 0 && !errorBarProblem) {
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
        var csvLink = a === 'href' && refs[i].tagName === 'A' && refs[i].hasAttribute('download') &&
          /^data:text\/csv;charset=utf-8,/.test(v || '');
        if (v !== null && v.charAt(0) !== '#' && !csvLink) external.push(a + '=' + v.slice(0, 60));
      });
    }
    var css = Array.prototype.map.call(document.querySelectorAll('style, [style]'), function (e) {
      return e.tagName === 'STYLE' ? e.textContent : e.getAttribute('style');
    }).join(' ');
    (css.match(/url\(\s*['"]?[^#'"\s)][^)]*\)|@import/g) || []).forEach(function (u) { external.push(u); });

    // A 1280 px reader sees every figure table's newest column and Total without scrolling.
    var pageOver = document.documentElement.scrollWidth - window.innerWidth;
    check('no sideways scrolling at ' + window.innerWidth + ' px', pageOver > 1 ? 'page overflows by ' + pageOver + ' px' : '');
    var hidden = [];
    FIGURES.forEach(function (id) {
      var sec = document.getElementById('fig-' + id);
      var tables = sec ? sec.querySelectorAll('table') : [];
      for (var t = 0; t < tables.length; t++) {
        var box = tables[t].closest('.table-scroll') || tables[t];
        var view = box.getBoundingClientRect();
        var right = Math.min(view.right, window.innerWidth), left = Math.max(view.left, 0);
        var cols = tables[t].querySelectorAll('thead th[data-col]');
        var last = cols[cols.length - 1];
        var totals = tables[t].querySelectorAll('[data-total]');
        [last].concat(Array.prototype.slice.call(totals, 0, 3)).forEach(function (el) {
          if (!el) return;
          var b = el.getBoundingClientRect();
          if (b.right > right + 1 || b.left < left - 1) hidden.push(id + ' ' + el.textContent.trim().slice(0, 12) + ' at ' + Math.round(b.left) + '..' + Math.round(b.right));
        });
      }
    });
    check('newest column and Total of every table in view', hidden.length ? hidden.slice(0, 3).join('; ') : '');

    var lineWhy = '', lines = 0, bounds = 0;
    document.querySelectorAll('svg.chart').forEach(function (svg) {
      lines += count(svg, 'path.line');
      bounds += count(svg, 'g.series .mark.partial');
      if (!lineWhy) { var w = lineProblem(svg); if (w) lineWhy = svg.id + ': ' + w; }
    });
    check('no line joins a lower bound (' + lines + ' lines, ' + bounds + ' lower bounds)',
      lineWhy || (lines === 0 ? 'no lines drawn' : ''));

    var axisWhy = '';
    FIGURES.forEach(function (id) {
      shownCharts(document.getElementById('fig-' + id)).forEach(function (svg) {
        var titles = Array.prototype.filter.call(svg.querySelectorAll('.axis-title'), function (t) {
          return t.textContent.trim() && visible(t);
        });
        if (titles.length < 2 && !axisWhy) axisWhy = id + ': ' + titles.length + ' axis titles';
      });
    });
    check('every chart says what its axes count', axisWhy);

    var fees = document.getElementById('fig-fees');
    var swatches = fees ? Array.prototype.map.call(fees.querySelectorAll('.series-legend .swatch'), function (e) {
      return getComputedStyle(e).backgroundColor;
    }) : [];
    var closest = Infinity, pair = '';
    for (var a = 0; a < swatches.length; a++) {
      for (var b = a + 1; b < swatches.length; b++) {
        var d = deltaE(swatches[a], swatches[b]);
        if (d < closest) { closest = d; pair = swatches[a] + ' / ' + swatches[b]; }
      }
    }
    var feeFills = fees ? Array.prototype.map.call(fees.querySelectorAll('svg .mark.exact, svg .mark.noisy'), function (m) {
      return getComputedStyle(m).fill;
    }) : [];
    var stray = feeFills.filter(function (f) { return swatches.indexOf(f) < 0; });
    check('fee bands in distinguishable colours (' + swatches.length + ' bands, closest ΔE ' + closest.toFixed(1) + ')',
      swatches.length < 2 ? 'no fee band legend' : closest < 20 ? 'ΔE ' + closest.toFixed(1) + ': ' + pair
        : stray.length ? 'a bar colour not in the legend: ' + stray[0] : '');

    var csvWhy = '', csvRows = 0;
    FIGURES.forEach(function (id) {
      var sec = document.getElementById('fig-' + id);
      if (!sec || csvWhy) return;
      var rows = linkedCsv(sec);
      if (!rows) { csvWhy = id + ': no CSV link'; return; }
      var header = rows[0] || [];
      var vi = header.indexOf('value'), si = header.indexOf('status');
      if (vi < 1 || si < 0) { csvWhy = id + ': CSV header ' + header.join(','); return; }
      csvRows += rows.length - 1;
      // Every number the first table shows as exact or noisy is a value of the CSV (lower bounds
      // are left out: a lower bound with a noisy part is printed by another rule in the CSV).
      var values = {};
      rows.slice(1).forEach(function (r) { values[r[vi]] = true; });
      var table = sec.querySelector('table');
      var cells = table ? table.querySelectorAll('tbody td:not([data-total]):not(.partial)') : [];
      for (var c = 0; c < cells.length; c++) {
        var n = cells[c].textContent.trim().replace(/ ± .*$/, '').replace(/,/g, '');
        if (/^[0-9]+$/.test(n) && !values[n]) { csvWhy = id + ': ' + n + ' is not in its CSV'; return; }
      }
    });
    check('each table downloads as CSV with its numbers (' + csvRows + ' rows)', csvWhy);
    check('no external references', external.length === 0 ? '' : external.slice(0, 3).join(' '));
  }

  // In a frame (the narrow check), results go to the outer page, which run.sh reads.
  var framed = window.frameElement;
  var mode = location.hash || (framed ? framed.getAttribute('data-mode') : '') || '';
  try {
    if (mode === '#narrow') {
      var over = document.documentElement.scrollWidth - window.innerWidth;
      check('fits a ' + window.innerWidth + ' px wide window', over > 1 ? 'overflows by ' + over + ' px' : '');
      var small = Array.prototype.filter.call(document.querySelectorAll('svg.chart'), function (s) {
        return s.getBoundingClientRect().width > window.innerWidth;
      });
      check('charts shrink to the window', small.length ? small.length + ' charts wider than the window' : '');
      var one = '', tiny = '', smallest = Infinity;
      FIGURES.forEach(function (id) {
        var charts = shownCharts(document.getElementById('fig-' + id));
        if (charts.length !== 1 && !one) one = id + ': ' + charts.length + ' charts shown';
        charts.forEach(function (svg) {
          var scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
          svg.querySelectorAll('text').forEach(function (t) {
            var px = parseFloat(getComputedStyle(t).fontSize) * scale;
            if (px < smallest) smallest = px;
            if (px < 10 && !tiny) tiny = id + ': "' + t.textContent.slice(0, 20) + '" at ' + px.toFixed(1) + ' px';
          });
        });
      });
      check('one chart per figure, laid out for the window', one);
      check('chart labels readable (smallest ' + smallest.toFixed(1) + ' px)', tiny);
      var wide = '';
      document.querySelectorAll('body *').forEach(function (el) {
        if (wide || !visible(el)) return;
        var b = el.getBoundingClientRect();
        if (b.right <= window.innerWidth + 1 && b.left >= -1) return;
        // Inside a box that scrolls sideways is fine: the box itself must fit.
        for (var p = el.parentElement; p; p = p.parentElement) {
          var o = getComputedStyle(p).overflowX;
          if (o === 'auto' || o === 'scroll' || o === 'hidden') return;
        }
        wide = el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined ? '.' + el.className : '') + ' spans ' + Math.round(b.left) + '..' + Math.round(b.right);
      });
      check('no element wider than the window', wide);
    } else {
      fullChecks();
    }
  } catch (e) {
    check('checker ran', String(e && e.message || e));
  }
  var out = framed ? window.parent.document : document;
  var pre = out.createElement('pre');
  pre.id = 'browser-check';
  pre.textContent = lines.join('\n');
  out.body.appendChild(pre);
})();
