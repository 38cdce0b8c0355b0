// Tiny DOM helpers: h() for HTML elements, s() for SVG. Text is always set as text, never as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg'

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value)
    else if (key === 'dataset') Object.assign(el.dataset, value)
    // Through the CSSOM: the page's CSP (style-src 'self') refuses inline style attributes.
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value)
    else if (key === 'text') el.textContent = value
    else if (key === 'class') el.setAttribute('class', value)
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children)
export const s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children)

export function clear(el) {
  while (el.firstChild) el.firstChild.remove()
  return el
}

export function replace(el, ...children) {
  clear(el)
  build(el, null, children)
  return el
}
