/**
 * Builds templates/quote-default.docx, the quote template the CRM ships (SPEC Q8). The .docx is committed as a
 * source asset; run this again after changing the layout: node scripts/make-default-template.js
 * Tokens: docs/tokens.md.
 */
const fs = require('node:fs');
const path = require('node:path');
const { docxPackage, para, run, cell, row, table } = require('./docx-package');

const NAVY = '1F3A5F';
const GREY = '667085';
const LIGHT = 'EEF2F6';
const small = (text, o = {}) => run(text, { size: 16, color: GREY, ...o });
const label = (text) => run(text, { size: 16, color: GREY, bold: true });
const p0 = (runs, o = {}) => para(runs, { spacingAfter: 0, ...o });

// Logo placeholder and own company, side by side.
const top = table([4819, 4819], [
  row([
    cell([p0([run('[ YOUR LOGO ]', { bold: true, color: GREY, size: 28 })]), p0([small('Replace this text with your logo in Word')])], { width: 4819, fill: LIGHT }),
    cell([
      p0([run('{company.name}', { bold: true, size: 24, color: NAVY })], { align: 'right' }),
      p0([small('{company.address}')], { align: 'right' }),
      p0([small('VAT no. {company.vat_number}')], { align: 'right' }),
    ], { width: 4819 }),
  ]),
], { borders: 'none' });

const title = [
  para([run('Quote {quote.number}')], { style: 'Title', spacingBefore: 360, spacingAfter: 40 }),
  para([run('{quote.name}', { color: GREY, size: 24 })], { spacingAfter: 240 }),
];

// Customer block and quote facts.
const customer = table([4819, 4819], [
  row([
    cell([
      p0([label('CUSTOMER')]),
      p0([run('{account.name}', { bold: true })]),
      p0(['{account.address}']),
      p0(['VAT no. {account.vat_number}']),
      p0([small('Attn. '), run('{contact.name}')]),
      p0([small('{contact.email}')]),
    ], { width: 4819 }),
    cell([
      p0([label('QUOTE DETAILS')]),
      p0([small('Date: '), run('{quote.date}')]),
      p0([small('Valid until: '), run('{quote.valid_to}', { bold: true })]),
      p0([small('Customer no.: '), run('{account.customer_number}')]),
      p0([small('Reference: '), run('{opportunity.name}')]),
      p0([small('Currency: '), run('{quote.currency}')]),
    ], { width: 4819, fill: LIGHT }),
  ]),
], { borders: 'none' });

// Items: a header row, then one row per quote line ({#items} in the first cell, {/items} in the last).
const W = [500, 4038, 1100, 1400, 1100, 1500];
const head = (text, align) => cell([p0([run(text, { bold: true, color: 'FFFFFF', size: 18 })], { align })], { fill: NAVY, align });
const items = table(W, [
  row([head('#'), head('Description'), head('Quantity', 'right'), head('Unit price', 'right'), head('Discount', 'right'), head('Amount', 'right')], { header: true }),
  row([
    cell([p0(['{#items}{index}'])], { width: W[0] }),
    cell([p0([run('{name}', { bold: true }), small('  {code}')]), p0([small('{#description}{description}{/description}')])], { width: W[1] }),
    cell([p0(['{quantity} {unit}'], { align: 'right' })], { width: W[2] }),
    cell([p0(['{unit_price}'], { align: 'right' })], { width: W[3] }),
    cell([p0(['{discount}'], { align: 'right' })], { width: W[4] }),
    cell([p0(['{net}{/items}'], { align: 'right' })], { width: W[5] }),
  ]),
], { borders: 'horizontal' });

// Totals, right-aligned under the amounts.
const T = [5638, 2500, 1500];
const totalRow = (name, token, o = {}) => row([
  cell([p0([''])], { width: T[0] }),
  cell([p0([run(name, { bold: o.bold, color: o.bold ? NAVY : GREY })], { align: 'right' })], { width: T[1], fill: o.bold ? LIGHT : undefined }),
  cell([p0([run(token, { bold: o.bold, color: o.bold ? NAVY : undefined })], { align: 'right' })], { width: T[2], fill: o.bold ? LIGHT : undefined }),
]);
const totals = table(T, [
  totalRow('Subtotal', '{quote.subtotal}'),
  totalRow('Discounts', '{quote.discount_total}'),
  totalRow('Net', '{quote.net_total}'),
  totalRow('Tax', '{quote.tax_total}'),
  totalRow('Total', '{quote.total}', { bold: true }),
], { borders: 'none' });

const closing = [
  para([run('Validity and terms')], { style: 'Heading2' }),
  para(['This quote is valid until ', run('{quote.valid_to}', { bold: true }), '. Prices are in {quote.currency}. Payment by bank transfer to {company.bank}.']),
  para([run('Your contact')], { style: 'Heading2' }),
  p0([run('{sales_rep.name}', { bold: true })]),
  p0([small('{sales_rep.email}')]),
  para([small('{company.name}')], { spacingBefore: 240 }),
];

const header = p0([small('{company.name} · Quote {quote.number} · {today}')], { align: 'right' });
const footer = p0([small('{company.name} · VAT no. {company.vat_number} · {company.bank}')], { align: 'center' });

const body = [top, ...title, customer, para([''], { spacingAfter: 120 }), items, para([''], { spacingAfter: 60 }), totals, ...closing].join('');
const out = path.join(__dirname, '..', 'templates', 'quote-default.docx');
fs.writeFileSync(out, docxPackage({ body, header, footer, title: 'Quote' }));
console.log(`wrote ${out}`);
