/* The Chinese (zh-cn) locale of dayjs, for the date pickers of dash-mantine-components when the page is in Chinese
   (pages.shell.date_picker: DatesProvider settings {locale: 'zh-cn'}). dash-mantine-components looks a locale up
   as window['dayjs_locale_' + name] and registers it with its own dayjs; nothing is fetched from a CDN.
   The data is dayjs's src/locale/zh-cn.js (MIT licence, Copyright (c) 2018-present iamkun). */
(function () {
    'use strict';
    window['dayjs_locale_zh-cn'] = {
        name: 'zh-cn',
        weekdays: '星期日_星期一_星期二_星期三_星期四_星期五_星期六'.split('_'),
        weekdaysShort: '周日_周一_周二_周三_周四_周五_周六'.split('_'),
        weekdaysMin: '日_一_二_三_四_五_六'.split('_'),
        months: '一月_二月_三月_四月_五月_六月_七月_八月_九月_十月_十一月_十二月'.split('_'),
        monthsShort: '1月_2月_3月_4月_5月_6月_7月_8月_9月_10月_11月_12月'.split('_'),
        ordinal: function (n) { return n + '日'; },
        weekStart: 1,
        formats: {
            LT: 'HH:mm',
            LTS: 'HH:mm:ss',
            L: 'YYYY/MM/DD',
            LL: 'YYYY年M月D日',
            LLL: 'YYYY年M月D日Ah点mm分',
            LLLL: 'YYYY年M月D日ddddAh点mm分'
        },
        relativeTime: {
            future: '%s内', past: '%s前', s: '几秒', m: '1 分钟', mm: '%d 分钟', h: '1 小时', hh: '%d 小时',
            d: '1 天', dd: '%d 天', M: '1 个月', MM: '%d 个月', y: '1 年', yy: '%d 年'
        }
    };
})();
