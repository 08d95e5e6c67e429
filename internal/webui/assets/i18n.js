// Chinese first, English on request: every element with data-i18n="key" shows dict[lang][key];
// data-i18n-attr="attr:key;attr2:key2" sets attributes (aria-label, placeholder, title). The
// choice is kept in localStorage and the document's lang follows it, so screen readers read
// each language with its own voice.

export function i18n(dict) {
  let lang = localStorage.getItem('tongban.lang') === 'en' ? 'en' : 'zh';
  const t = (key, vars = {}) => {
    let s = (dict[lang] && dict[lang][key]) || (dict.zh && dict.zh[key]) || key;
    for (const [k, v] of Object.entries(vars)) s = s.replaceAll('{' + k + '}', v);
    return s;
  };
  const apply = (root = document) => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll('[data-i18n-attr]')) {
      for (const pair of el.dataset.i18nAttr.split(';')) {
        const [attr, key] = pair.split(':');
        if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
      }
    }
  };
  const setLang = (l) => {
    lang = l === 'en' ? 'en' : 'zh';
    localStorage.setItem('tongban.lang', lang);
    apply();
    document.dispatchEvent(new CustomEvent('langchange', { detail: lang }));
  };
  return { t, apply, setLang, get lang() { return lang; } };
}
