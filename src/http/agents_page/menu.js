// The WAI-ARIA menu button: a <button aria-haspopup="menu" aria-expanded> that opens a
// role="menu" list of role="menuitem" entries. Enter, Space or ArrowDown open it on the first
// item, ArrowUp on the last; arrows, Home and End move; Enter or Space choose; Escape closes
// and returns focus to the button; Tab or a click elsewhere closes it.

let openMenu = null;

/** Makes `button` a menu button. `items()` is asked on each opening and returns
 *  `[{ label, run, disabled? }]`. */
export function menuButton(button, items) {
  button.setAttribute('aria-haspopup', 'menu');
  button.setAttribute('aria-expanded', 'false');
  const menu = document.createElement('ul');
  menu.setAttribute('role', 'menu');
  menu.className = 'menu';
  menu.hidden = true;
  menu.id = `${button.id || `menu-${Math.random().toString(36).slice(2)}`}-menu`;
  button.setAttribute('aria-controls', menu.id);
  if (button.id) menu.setAttribute('aria-labelledby', button.id);
  else menu.setAttribute('aria-label', button.getAttribute('aria-label') ?? button.textContent);
  button.after(menu);

  const entries = () => [...menu.querySelectorAll('[role="menuitem"]')];
  const focusAt = (index) => {
    const all = entries();
    if (all.length) all[(index + all.length) % all.length].focus();
  };

  function close(returnFocus) {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (openMenu?.menu === menu) openMenu = null;
    if (returnFocus) button.focus();
  }

  function open(at) {
    if (openMenu && openMenu.menu !== menu) openMenu.close(false);
    menu.replaceChildren(...items().map(({ label, run, disabled }) => {
      const item = document.createElement('li');
      item.setAttribute('role', 'menuitem');
      item.tabIndex = -1;
      item.textContent = label;
      if (disabled) item.setAttribute('aria-disabled', 'true');
      const choose = () => {
        if (disabled) return;
        close(true);
        run();
      };
      item.addEventListener('click', choose);
      item.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          choose();
        }
      });
      return item;
    }));
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    openMenu = { menu, close };
    focusAt(at === 'last' ? -1 : 0);
  }

  button.addEventListener('click', () => (menu.hidden ? open('first') : close(true)));
  button.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      open(event.key === 'ArrowUp' ? 'last' : 'first');
    }
  });
  menu.addEventListener('keydown', (event) => {
    const all = entries();
    const index = all.indexOf(document.activeElement);
    switch (event.key) {
      case 'ArrowDown': event.preventDefault(); focusAt(index + 1); break;
      case 'ArrowUp': event.preventDefault(); focusAt(index - 1); break;
      case 'Home': event.preventDefault(); focusAt(0); break;
      case 'End': event.preventDefault(); focusAt(-1); break;
      case 'Escape': event.preventDefault(); close(true); break;
      case 'Tab': close(false); break;
      default: {
        // Type-ahead: the next item starting with the typed letter.
        if (event.key.length === 1 && /\S/.test(event.key)) {
          const next = all.findIndex((item, i) => i > index && item.textContent.toLowerCase().startsWith(event.key.toLowerCase()));
          const first = all.findIndex((item) => item.textContent.toLowerCase().startsWith(event.key.toLowerCase()));
          if (next >= 0 || first >= 0) focusAt(next >= 0 ? next : first);
        }
      }
    }
  });
  return { close };
}

document.addEventListener('click', (event) => {
  if (openMenu && !openMenu.menu.contains(event.target)
      && !openMenu.menu.previousElementSibling?.contains(event.target)) openMenu.close(false);
});
