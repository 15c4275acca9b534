/**
 * A minimal WordprocessingML package writer (plain CommonJS, run with `node`): enough OOXML to build the
 * default quote template (scripts/make-default-template.js) and the Word-style test fixture
 * (test/fixtures/make-word-style-template.js). Not used by the running app.
 */
const PizZip = require('pizzip');

const W_NS = 'http://schemas.openxmlformats.org/wordprocessingml/2006/main';
const R_NS = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A run: text with optional bold / italic / size (half-points) / colour (hex) / font. */
function run(text, o = {}) {
  const props = [
    o.font ? `<w:rFonts w:ascii="${o.font}" w:hAnsi="${o.font}"/>` : '',
    o.bold ? '<w:b/>' : '', o.italic ? '<w:i/>' : '',
    o.color ? `<w:color w:val="${o.color}"/>` : '',
    o.size ? `<w:sz w:val="${o.size}"/><w:szCs w:val="${o.size}"/>` : '',
  ].join('');
  return `<w:r>${props ? `<w:rPr>${props}</w:rPr>` : ''}<w:t xml:space="preserve">${esc(text)}</w:t></w:r>`;
}

/** A paragraph of runs (strings become plain runs); o.align left|center|right, o.style, o.spacingAfter (twips). */
function para(runs, o = {}) {
  const list = (Array.isArray(runs) ? runs : [runs]).map((x) => (typeof x === 'string' ? (x.startsWith('<w:r') ? x : run(x)) : ''));
  const props = [
    o.style ? `<w:pStyle w:val="${o.style}"/>` : '',
    o.keepNext ? '<w:keepNext/>' : '',
    o.spacingAfter !== undefined ? `<w:spacing w:after="${o.spacingAfter}" w:before="${o.spacingBefore ?? 0}"/>` : '',
    o.align ? `<w:jc w:val="${o.align}"/>` : '',
  ].join('');
  return `<w:p>${props ? `<w:pPr>${props}</w:pPr>` : ''}${list.join('')}</w:p>`;
}

/** A table cell; o.width in twips, o.fill hex shading, o.align for its paragraphs. */
function cell(content, o = {}) {
  const paras = (Array.isArray(content) ? content : [content]).map((c) => (c.startsWith('<w:p') ? c : para(c, { align: o.align, spacingAfter: 0 })));
  const props = [
    o.width ? `<w:tcW w:w="${o.width}" w:type="dxa"/>` : '',
    o.span ? `<w:gridSpan w:val="${o.span}"/>` : '',
    o.fill ? `<w:shd w:val="clear" w:color="auto" w:fill="${o.fill}"/>` : '',
    '<w:tcMar><w:top w:w="60" w:type="dxa"/><w:bottom w:w="60" w:type="dxa"/></w:tcMar>',
  ].join('');
  return `<w:tc><w:tcPr>${props}</w:tcPr>${paras.join('')}</w:tc>`;
}

const row = (cells, o = {}) => `<w:tr>${o.header ? '<w:trPr><w:tblHeader/></w:trPr>' : ''}${cells.join('')}</w:tr>`;

/** A table with the given column widths (twips); o.borders 'grid' | 'horizontal' | 'none'. */
function table(widths, rows, o = {}) {
  const border = (side, on) => `<w:${side} w:val="${on ? 'single' : 'nil'}" w:sz="4" w:space="0" w:color="${o.borderColor ?? 'BFC5CC'}"/>`;
  const b = o.borders ?? 'horizontal';
  const borders = `<w:tblBorders>${border('top', b !== 'none')}${border('left', b === 'grid')}${border('bottom', b !== 'none')}` +
    `${border('right', b === 'grid')}${border('insideH', b !== 'none')}${border('insideV', b === 'grid')}</w:tblBorders>`;
  const total = widths.reduce((a, w) => a + w, 0);
  return `<w:tbl><w:tblPr><w:tblW w:w="${total}" w:type="dxa"/>${borders}<w:tblLayout w:type="fixed"/></w:tblPr>` +
    `<w:tblGrid>${widths.map((w) => `<w:gridCol w:w="${w}"/>`).join('')}</w:tblGrid>${rows.join('')}</w:tbl>`;
}

const STYLES = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="${W_NS}">
<w:docDefaults><w:rPrDefault><w:rPr><w:rFonts w:ascii="Calibri" w:hAnsi="Calibri" w:eastAsia="Calibri" w:cs="Calibri"/><w:sz w:val="20"/><w:szCs w:val="20"/><w:color w:val="222222"/><w:lang w:val="en-GB"/></w:rPr></w:rPrDefault>
<w:pPrDefault><w:pPr><w:spacing w:after="80" w:line="264" w:lineRule="auto"/></w:pPr></w:pPrDefault></w:docDefaults>
<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/><w:qFormat/></w:style>
<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/><w:qFormat/><w:pPr><w:spacing w:after="120"/></w:pPr><w:rPr><w:b/><w:color w:val="1F3A5F"/><w:sz w:val="40"/><w:szCs w:val="40"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/><w:basedOn w:val="Normal"/><w:qFormat/><w:pPr><w:keepNext/><w:spacing w:before="240" w:after="80"/></w:pPr><w:rPr><w:b/><w:color w:val="1F3A5F"/><w:sz w:val="24"/><w:szCs w:val="24"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Small"><w:name w:val="Small"/><w:basedOn w:val="Normal"/><w:rPr><w:color w:val="667085"/><w:sz w:val="16"/><w:szCs w:val="16"/></w:rPr></w:style>
<w:style w:type="table" w:default="1" w:styleId="TableNormal"><w:name w:val="Normal Table"/><w:tblPr><w:tblInd w:w="0" w:type="dxa"/><w:tblCellMar><w:left w:w="100" w:type="dxa"/><w:right w:w="100" w:type="dxa"/></w:tblCellMar></w:tblPr></w:style>
</w:styles>`;

/**
 * Builds the .docx bytes. `body` is the XML inside <w:body> (before the section properties); `header` and
 * `footer` are optional paragraph XML for the default header and footer parts.
 */
function docxPackage({ body, header, footer, title = 'Document' }) {
  const zip = new PizZip();
  // A fixed date keeps the committed .docx files byte-for-byte reproducible.
  const add = (name, data) => zip.file(name, data, { date: new Date('2026-01-01T00:00:00Z') });
  const overrides = [
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>',
    '<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>',
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>',
    header ? '<Override PartName="/word/header1.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"/>' : '',
    footer ? '<Override PartName="/word/footer1.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml"/>' : '',
  ].join('');
  add('[Content_Types].xml', '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
    `<Default Extension="xml" ContentType="application/xml"/>${overrides}</Types>`);
  add('_rels/.rels', '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>' +
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>' +
    '</Relationships>');
  add('docProps/core.xml', '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">' +
    `<dc:title>${esc(title)}</dc:title><dc:creator>CRM</dc:creator></cp:coreProperties>`);
  const rels = ['<Relationship Id="rIdStyles" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'];
  if (header) rels.push('<Relationship Id="rIdHeader1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/header" Target="header1.xml"/>');
  if (footer) rels.push('<Relationship Id="rIdFooter1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/footer" Target="footer1.xml"/>');
  add('word/_rels/document.xml.rels', '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
    `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">${rels.join('')}</Relationships>`);
  add('word/styles.xml', STYLES);
  if (header) add('word/header1.xml', `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:hdr xmlns:w="${W_NS}" xmlns:r="${R_NS}">${header}</w:hdr>`);
  if (footer) add('word/footer1.xml', `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:ftr xmlns:w="${W_NS}" xmlns:r="${R_NS}">${footer}</w:ftr>`);
  const sect = '<w:sectPr>' +
    (header ? '<w:headerReference w:type="default" r:id="rIdHeader1"/>' : '') +
    (footer ? '<w:footerReference w:type="default" r:id="rIdFooter1"/>' : '') +
    '<w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="1134" w:right="1134" w:bottom="1134" w:left="1134" w:header="567" w:footer="567" w:gutter="0"/></w:sectPr>';
  add('word/document.xml', `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="${W_NS}" xmlns:r="${R_NS}"><w:body>${body}${sect}</w:body></w:document>`);
  return zip.generate({ type: 'nodebuffer', compression: 'DEFLATE' });
}

module.exports = { docxPackage, para, run, cell, row, table, esc };
