// CRM plugin page script (served from self: the host's CSP forbids inline scripts).
(function () {
  if (typeof htmx === 'undefined') return;
  // No eval of attribute code, and no inline <style> from htmx (the CSP would refuse it anyway).
  htmx.config.allowEval = false;
  htmx.config.includeIndicatorStyles = false;
  // Re-rendered forms with messages (422) and stale-save answers (409) are swapped like successes;
  // other errors leave the page as it is and show their message.
  htmx.config.responseHandling = [
    { code: '204', swap: false },
    { code: '[23]..', swap: true },
    { code: '422', swap: true, error: false },
    { code: '409', swap: true, error: false },
    { code: '[45]..', swap: false, error: true },
  ];
  document.addEventListener('htmx:responseError', function (event) {
    var xhr = event.detail.xhr;
    var message = xhr.status === 0 ? 'The server could not be reached.' : (xhr.responseText || ('Error ' + xhr.status));
    var main = document.getElementById('main');
    if (!main) return;
    var box = document.getElementById('crm-flash');
    if (!box) {
      box = document.createElement('p');
      box.id = 'crm-flash';
      box.className = 'flash error';
      box.setAttribute('role', 'alert');
      main.insertBefore(box, main.firstChild);
    }
    box.textContent = message;
  });
})();

// Kanban: dragging a card onto another column sends the request the card's move menu sends (the same
// route, so the server applies the same rules). Without JavaScript the card's "Move…" link opens the menu.
(function () {
  var dragged = null;
  document.addEventListener('dragstart', function (event) {
    var card = event.target.closest && event.target.closest('.card[data-opportunity]');
    if (!card) return;
    dragged = card;
    event.dataTransfer.effectAllowed = 'move';
    event.dataTransfer.setData('text/plain', card.getAttribute('data-opportunity'));
  });
  document.addEventListener('dragover', function (event) {
    var column = dragged && event.target.closest && event.target.closest('.kanban-column');
    if (!column) return;
    event.preventDefault();
    column.classList.add('drop-target');
  });
  document.addEventListener('dragleave', function (event) {
    var column = event.target.closest && event.target.closest('.kanban-column');
    if (column) column.classList.remove('drop-target');
  });
  document.addEventListener('drop', function (event) {
    var column = dragged && event.target.closest && event.target.closest('.kanban-column');
    if (!column) return;
    event.preventDefault();
    column.classList.remove('drop-target');
    var card = dragged;
    dragged = null;
    if (column.contains(card) || typeof htmx === 'undefined') return;
    var board = document.getElementById('kanban');
    // htmx adds the CSRF header from the page's hx-headers, inherited by the card.
    htmx.ajax('POST', '/crm/opportunities/' + card.getAttribute('data-opportunity') + '/status', {
      source: card, target: '#crm-page', swap: 'outerHTML',
      values: { status_id: column.getAttribute('data-status'), lock_version: card.getAttribute('data-lock'), back: 'kanban', board: board.getAttribute('data-board') },
    });
  });
})();
