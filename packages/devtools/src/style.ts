// Styles of the panel, inside its shadow root: nothing leaks into the page, and `all: initial`
// on the host keeps the page's inherited styles out.
export const STYLE = `
:host { all: initial; }
.panel { font: 12px/1.4 ui-sans-serif, system-ui, sans-serif; color: #e6e9ef; color-scheme: dark; }
.floating { position: fixed; z-index: 2147483000; max-width: min(56rem, calc(100vw - 2rem)); }
.bottom-right { right: 1rem; bottom: 1rem; text-align: right; }
.bottom-left { left: 1rem; bottom: 1rem; }
.top-right { right: 1rem; top: 1rem; text-align: right; }
.top-left { left: 1rem; top: 1rem; }
.toggle { background: #6d5dfc; color: #fff; border: 0; border-radius: 999px; padding: .4rem .9rem; font-weight: 600; cursor: pointer; }
.body { text-align: left; background: #15181e; border: 1px solid #2c313a; border-radius: 8px; padding: .6rem; margin-top: .4rem; max-height: 70vh; overflow: auto; }
.inline .body { margin: 0; max-height: none; }
.title { font-size: 14px; margin: 0 0 .4rem; }
h3 { font-size: 12px; margin: .6rem 0 .3rem; }
h4 { font-size: 11px; margin: .4rem 0 .2rem; color: #9aa4b2; }
button, select { font: inherit; color: inherit; background: #232833; border: 1px solid #3a4150; border-radius: 4px; padding: .1rem .4rem; cursor: pointer; }
:focus-visible { outline: 2px solid #8fb3ff; outline-offset: 1px; }
.controls { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; }
fieldset { border: 0; padding: 0; margin: 0; display: flex; gap: .2rem; align-items: center; }
legend { float: left; margin-right: .3rem; color: #9aa4b2; }
.summary { color: #9aa4b2; margin: .4rem 0; }
.columns { display: grid; grid-template-columns: minmax(0, 2fr) minmax(12rem, 1fr); gap: .8rem; }
ol, ul { list-style: none; margin: 0; padding: 0; }
.group { border-left: 3px solid #3a4150; padding: .2rem .4rem; margin-bottom: .4rem; }
.group.tab { border-color: #f0a030; } .group.remote { border-color: #3fb68b; } .group.local { border-color: #6d8cff; }
.head { display: flex; gap: .5rem; color: #9aa4b2; flex-wrap: wrap; }
.event { display: flex; gap: .4rem; align-items: baseline; flex-wrap: wrap; }
.entity { border: 0; background: none; padding: 0; text-decoration: underline dotted; }
.diff { color: #c8cdd6; overflow-wrap: anywhere; }
.chip { border-radius: 999px; padding: 0 .4rem; background: #232833; }
.chip.local { color: #8fa7ff; } .chip.tab { color: #f0b450; } .chip.remote { color: #5fd0a5; } .chip.merge { color: #d99cf0; }
.writers { list-style: none; padding: 0; margin: 0; }
.type { font-weight: 600; } .type.create { color: #5fd0a5; } .type.update { color: #8fb3ff; } .type.delete { color: #ff7b7b; }
.counters, .status { display: grid; grid-template-columns: auto 1fr; gap: .1rem .6rem; margin: 0; }
dd { margin: 0; }
.empty { color: #7d8694; font-style: italic; }
.history li { margin-bottom: .3rem; }
`
