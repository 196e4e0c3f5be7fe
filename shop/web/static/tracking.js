// Keeps the order tracking page current until the order is shipped or cancelled: listens to the
// server's event stream (Server-Sent Events), and asks the JSON API once a second instead when
// the browser has no EventSource or the stream is refused.
(function () {
  "use strict";

  var POLL_MS = 1000;
  // After a failed request, wait longer each time (capped) so a down server is not hammered.
  var MAX_BACKOFF_MS = 15000;
  // Reconnections in a row that bring nothing before the page gives up on the stream and polls.
  var MAX_STREAM_FAILURES = 3;
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  var root = document.getElementById("order");
  if (!root || root.dataset.final === "true") {
    return;
  }
  var text = JSON.parse(root.dataset.text);
  var apiUrl = root.dataset.api;
  var eventsUrl = root.dataset.events;
  var finished = false;
  var delay = POLL_MS;
  var lastTimeline = "";

  function byId(id) {
    return document.getElementById(id);
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  // The same shape the server's "when" filter writes: "03 May 2025, 14:02:11 UTC".
  function when(iso) {
    var plain = iso.replace(/\.\d+/, "");
    if (!/(Z|[+-]\d\d:\d\d)$/.test(plain)) {
      plain += "Z"; // stored times are UTC even when the database dropped the offset
    }
    var d = new Date(plain);
    if (isNaN(d.getTime())) {
      return iso;
    }
    return pad(d.getUTCDate()) + " " + MONTHS[d.getUTCMonth()] + " " + d.getUTCFullYear() + ", " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }

  // "shoeshop.payment.succeeded.v1" reads "Payment succeeded", as on the server.
  function phrase(type) {
    var words = type.split(".").slice(1).filter(function (part) {
      return !/^v\d+$/.test(part);
    });
    var joined = words.join(" ").replace(/_/g, " ").toLowerCase();
    return joined ? joined.charAt(0).toUpperCase() + joined.slice(1) : type;
  }

  function reasonText(reason) {
    if (!reason) {
      return "";
    }
    if (text.reasons[reason]) {
      return text.reasons[reason];
    }
    var words = reason.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function renderStatus(order) {
    var status = order.status;
    var code = byId("order-status");
    code.textContent = status;
    code.dataset.status = status;
    byId("status-label").textContent = text.labels[status] || status;
    byId("status-card").className = "card status-card status-" + status.toLowerCase();

    var reason = byId("order-reason");
    reason.textContent = reasonText(order.reason);
    reason.dataset.reason = order.reason || "";
    reason.hidden = !order.reason;

    var reached = Math.max(text.steps.indexOf(status), 0);
    var cancelled = status === "CANCELLED";
    var strip = byId("progress");
    strip.classList.toggle("is-cancelled", cancelled);
    Array.prototype.forEach.call(strip.querySelectorAll("[data-step]"), function (li, index) {
      var state;
      if (cancelled) {
        state = index === 0 ? "done" : "todo";
      } else {
        state = index < reached ? "done" : index === reached ? "current" : "todo";
      }
      li.className = "step is-" + state;
      if (state === "current") {
        li.setAttribute("aria-current", "step");
      } else {
        li.removeAttribute("aria-current");
      }
    });

    var payment = byId("payment-status");
    if (payment && order.payment) {
      payment.dataset.paymentStatus = order.payment.status;
      payment.textContent = order.payment.status.charAt(0).toUpperCase() + order.payment.status.slice(1);
    }
    document.title = "Order " + order.id.slice(0, 8) + ": " + (text.labels[status] || status) + " · Shoeshop";
  }

  function renderShipment(order) {
    var shipped = Boolean(order.shipment);
    byId("shipment").hidden = !shipped;
    byId("shipment-pending").hidden = shipped || order.status === "CANCELLED";
    byId("carrier").textContent = shipped ? order.shipment.carrier : "";
    byId("tracking-number").textContent = shipped ? order.shipment.tracking_number : "";
  }

  function renderTimeline(order) {
    // Redraw only when something changed, so a screen reader or a text selection is not disturbed.
    var signature = JSON.stringify(order.timeline);
    if (signature === lastTimeline) {
      return;
    }
    lastTimeline = signature;
    var list = byId("timeline");
    var fresh = document.createDocumentFragment();
    order.timeline.forEach(function (event) {
      var li = document.createElement("li");
      li.dataset.type = event.type;
      li.appendChild(span("event-phrase", phrase(event.type), "span"));
      li.appendChild(span("event-type", event.type, "code"));
      li.appendChild(span("event-source", "from " + event.source, "span"));
      var time = span("", when(event.time), "time");
      time.setAttribute("datetime", event.time);
      li.appendChild(time);
      if (typeof event.since_placed_s === "number") {
        li.appendChild(span("event-since", "+" + event.since_placed_s.toFixed(2) + " s", "span"));
      }
      fresh.appendChild(li);
    });
    list.replaceChildren(fresh);
  }

  // textContent only: nothing from the API is ever parsed as HTML.
  function span(className, content, tag) {
    var el = document.createElement(tag);
    if (className) {
      el.className = className;
    }
    el.textContent = content;
    return el;
  }

  function renderCancel(order) {
    var form = byId("cancel-form");
    if (form && typeof order.cancellable === "boolean") {
      form.hidden = !order.cancellable;
    }
    var pending = byId("cancel-pending");
    if (pending && typeof order.cancel_requested === "boolean") {
      pending.hidden = !(order.cancel_requested && text.final.indexOf(order.status) === -1);
    }
  }

  function renderDelay(order) {
    var note = byId("order-delayed");
    if (!note) {
      return;
    }
    var delayed = order.delayed && text.final.indexOf(order.status) === -1;
    note.hidden = !delayed;
    note.dataset.stage = delayed ? order.delayed.stage : "";
    note.textContent = delayed ? (text.delays[order.delayed.stage] || text.delays.other) : "";
  }

  function render(order) {
    renderStatus(order);
    renderDelay(order);
    renderShipment(order);
    renderTimeline(order);
    renderCancel(order);
    finished = text.final.indexOf(order.status) !== -1;
  }

  function poll() {
    root.dataset.live = "polling";
    fetch(apiUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (order) {
        render(order);
        delay = POLL_MS;
        if (!finished) {
          window.setTimeout(poll, delay);
        }
      })
      .catch(function () {
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
        window.setTimeout(poll, delay);
      });
  }

  // The server sends the whole order view at each change (id: its version); the browser
  // reconnects by itself with Last-Event-ID when a stream ends before the order does.
  function listen() {
    var source = new EventSource(eventsUrl);
    var failures = 0;
    root.dataset.live = "stream";
    source.onopen = function () {
      failures = 0;
    };
    source.addEventListener("order", function (message) {
      render(JSON.parse(message.data));
      if (finished) {
        source.close();
      }
    });
    source.onerror = function () {
      failures += 1;
      // CLOSED: the server turned the stream away (busy, gone); else the browser is retrying.
      if (source.readyState === EventSource.CLOSED || failures > MAX_STREAM_FAILURES) {
        source.close();
        if (!finished) {
          window.setTimeout(poll, POLL_MS);
        }
      }
    };
  }

  if (window.EventSource && eventsUrl) {
    listen();
  } else {
    window.setTimeout(poll, POLL_MS);
  }
})();
