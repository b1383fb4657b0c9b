"""Chinese text normalization, category by category, and on the development set."""

from __future__ import annotations

import sys

import pytest

from conftest import REPO, SHARED_DATA
from wyoming_indextts.frontend.normalize import normalize_zh


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        # cardinals, 两 before measure words, large numbers, separators
        ("有2只猫", "有两只猫"), ("2小时", "两小时"), ("2点", "两点"), ("22个", "二十二个"), ("105元", "一百零五元"),
        ("20000步", "两万步"), ("12,345步", "一万二千三百四十五步"), ("10", "十"),
        # decimals, negatives, fractions, percentages, ordinals
        ("3.5公里", "三点五公里"), ("-3", "负三"), ("1/3", "三分之一"), ("60%", "百分之六十"), ("第3名", "第三名"),
        # years, dates, times
        ("2025年", "二零二五年"), ("2025-04-05", "二零二五年四月五日"), ("15:30", "十五点三十分"),
        ("7:05", "七点零五分"), ("00:30", "零点三十分"),
        # ranges, scores, ratios, arithmetic
        ("3-5天", "三到五天"), ("50%~60%", "百分之五十到百分之六十"), ("比分是1:0", "比分是一比零"),
        ("3:2", "三比二"), ("3+5=8", "三加五等于八"), ("10-4=6", "十减四等于六"), ("3+5等于几", "三加五等于几"), ("3+5×2", "三加五乘二"),
        # temperatures and units
        ("-3℃", "零下三摄氏度"), ("23.5°C", "二十三点五摄氏度"), ("60km/h", "六十公里每小时"), ("12.5kWh", "十二点五千瓦时"),
        ("2000W", "两千瓦"), ("220V", "二百二十伏"), ("5kg", "五千克"), ("20m²", "二十平方米"), ("50dB", "五十分贝"),
        ("100Mbps", "一百兆比特每秒"), ("20ms", "二十毫秒"),
        # money
        ("¥58.5", "五十八点五元"), ("$12", "十二美元"),
        # phone and service numbers
        ("请拨打110", "请拨打幺幺零"), ("15900001111", "幺五九零零零零幺幺幺幺"), ("400-820-8820", "四零零八二零八八二零"),
        # letters kept for the G2P
        ("PM2.5", "PM二点五"), ("4K", "四K"), ("Wi-Fi", "Wi-Fi"),
        # 两 before measure words and big units, never for months or ordinals
        ("2月14日", "二月十四日"), ("2个月", "两个月"), ("孩子2岁", "孩子两岁"), ("2万步", "两万步"), ("2楼", "二楼"),
        ("1-2个小时", "一到两个小时"), ("2元", "两元"),
        # signs: negative percentages, temperature ranges below zero
        ("增长了-3.2%", "增长了负百分之三点二"), ("-10~5℃", "零下十到五摄氏度"),
        # time and year ranges
        ("18:00-20:00", "十八点到二十点"), ("1998-2025年", "一九九八到二零二五年"),
        # dotted numbers: versions, IPv4 addresses
        ("版本2.3.1", "版本二点三点一"), ("192.168.1.100", "一九二点一六八点一点一零零"),
        # digit strings: landlines with an area code, codes and rooms, resolutions
        ("010-62345678", "零幺零六二三四五六七八"), ("验证码是5823", "验证码是五八二三"), ("房间号302", "房间号三零二"),
        ("1080P", "一零八零P"),
        # more units, money without trailing zeros
        ("12.5MB/s", "十二点五兆字节每秒"), ("75μg/m³", "七十五微克每立方米"), ("5000mAh", "五千毫安时"),
        ("300lux", "三百勒克斯"), ("¥256.30", "二百五十六点三元"), ("¥12.00", "十二元"),
        ("总价1,299.00元", "总价一千二百九十九元"), ("45.60元", "四十五点六元"),
        # seconds: zero-padded like minutes, not said when zero
        ("14:23:05", "十四点二十三分零五秒"), ("14:23:00", "十四点二十三分"), ("8:00:30", "八点零分三十秒"),
        ("现在是24:00", "现在是二十四点"),
        # month/day only where the words around say date; otherwise a fraction
        ("请于3/15前缴费", "请于三月十五日前缴费"), ("从5/1起", "从五月一日起"), ("在3/4的位置", "在四分之三的位置"),
        # rates with a slash, blood pressure, "100+", 两 before rooms
        ("7.85元/升", "七点八五元每升"), ("2元/斤", "两元每斤"), ("72次/分", "七十二次每分"),
        ("血压120/80mmHg", "血压一百二十比八十毫米汞柱"), ("100+个设备", "一百多个设备"), ("3室2厅", "三室两厅"),
        # phone numbers in groups, with a country code; codes of letters and digits; rooms
        ("请拨打+86 138 1234 5678", "请拨打加八六幺三八幺二三四五六七八"), ("400 820 8820", "四零零八二零八八二零"),
        ("G1234次列车", "G幺二三四次列车"), ("2单元1203", "二单元幺二零三"), ("501室", "五零幺室"),
        # a dash after a date or clock word is a range; a plus sign in running text is not said; dimensions
        ("5月1日-5月5日", "五月一日到五月五日"), ("10点-11点", "十点到十一点"), ("高+3℃", "高三摄氏度"),
        ("1920×1080", "一千九百二十乘一千零八十"), ("今天-3℃", "今天零下三摄氏度"),
        # ranges: 两 at the low end, negative ends, a unit said where it is written, decimal ratios
        ("2到3个小时", "两到三个小时"), ("气温-5~-1℃", "气温零下五到零下一摄氏度"), ("-5到-1℃", "零下五到零下一摄氏度"),
        ("20℃到26℃", "二十摄氏度到二十六摄氏度"), ("比例是1:1.2", "比例是一比一点二"), ("1.5:1", "一点五比一"),
        # codes: a leading zero, a letter before a 2, hyphens; ports and pickup codes; year spans and months
        ("座位08F", "座位零八F"), ("错误代码E03", "错误代码E零三"), ("B2层", "B二层"), ("COVID-19", "COVID十九"),
        ("故障码F1-02", "故障码F幺杠零二"), ("端口8080", "端口八零八零"), ("取件码3-2-1508", "取件码三杠二杠幺五零八"),
        ("房间3-5人", "房间三到五人"), ("2023-2024赛季", "二零二三到二零二四赛季"), ("账单2025-03", "账单二零二五年三月"),
        ("价格1999-2999元", "价格一千九百九十九到两千九百九十九元"),
        # 12-hour clock, the part of the day said once
        ("现在是2:00 PM", "现在是下午两点"), ("8am出发", "上午八点出发"), ("晚上7pm开饭", "晚上七点开饭"),
        # fractions with a decimal or over 100, pace, 两 before metric prefixes
        ("评分4.8/5", "评分五分之四点八"), ("音量20/100", "音量百分之二十"), ("配速5'30\"", "配速五分三十秒"),
        ("下降了2cm", "下降了两厘米"), ("2W", "两瓦"), ("心率165bpm", "心率一百六十五次每分钟"),
        # generations, plus-minus, x as times, 两 before nights
        ("90后", "九零后"), ("00后", "零零后"), ("±0.1℃", "正负零点一摄氏度"), ("7x24小时", "七乘二十四小时"),
        ("3天2夜", "三天两夜"),
        # more dates: year words, ISO date-times, month/day after 今天, the year last; a spaced degree sign
        ("2025财年", "二零二五财年"), ("2024款", "二零二四款"), ("2025-11-24T08:30:00", "二零二五年十一月二十四日八点三十分"),
        ("今天是11/24", "今天是十一月二十四日"), ("11/24/2025", "二零二五年十一月二十四日"),
        ("24.11.2025", "二零二五年十一月二十四日"), ("温度为23 ° C", "温度为二十三摄氏度"),
        ("-0.0℃", "零点零摄氏度"),
        # 二 where 2 is a place or a rank, not a count
        # spaces a template puts around numbers are not pauses; rates after prices
        ("已开启 2 小时", "已开启两小时"), ("2025 年 12 月", "二零二五年十二月"), ("风速 3.4 米/秒", "风速三点四米每秒"),
        ("电费 ￥0.56/度", "电费零点五六元每度"), ("餐厅在 2 层", "餐厅在二层"), ("快递放在 101 室", "快递放在幺零幺室"),
        ("2年级", "二年级"), ("电梯到达2层", "电梯到达二层"), ("餐厅在2层", "餐厅在二层"), ("这栋楼有2层", "这栋楼有两层"),
        # Home Assistant timestamps: the local time, no offset, no fractional seconds
        ("2025-06-01T09:00:00+08:00", "二零二五年六月一日九点"), ("06:12:00+08:00", "六点十二分"),
        ("2025-06-01 09:00:00.123456+08:00", "二零二五年六月一日 九点"), ("2025-06-01T09:00Z", "二零二五年六月一日九点"),
        ("12:30:00-13:00:00", "十二点三十分到十三点"), ("时区UTC+8", "时区UTC加八"),
        # durations: where the words say so, a lone 0 hour (timedelta), timedelta with days
        ("系统已运行 1:30:00", "系统已运行一小时三十分钟"), ("0:05:30", "五分三十秒"), ("26:30:00", "二十六小时三十分钟"),
        ("已运行 3 days, 4:05:06", "已运行三天四小时五分六秒"), ("0:21:00后", "二十一分钟后"),
        # versions: after 版本/固件/v or a product name, before 版, in a sentence about versions
        ("Home Assistant已经更新到2025.3.2版本", "Home Assistant已经更新到二零二五点三点二版本"),
        ("Home Assistant 2025.3版本", "Home Assistant 二零二五点三版本"), ("Supervisor 2025.03.1", "Supervisor 二零二五点零三点一"),
        ("固件版本v2.1.0", "固件版本v二点一点零"), ("有新版本可用：2025.7.1", "有新版本可用：二零二五点七点一"),
        ("ESPHome 2025.11.1", "ESPHome 二零二五点十一点一"), ("2025.7.1到期", "二零二五年七月一日到期"),
        # addresses: IPv4 and port, MAC pairs
        ("192.168.1.10:8123", "一九二点一六八点一点一零冒号八一二三"), ("MAC A4:C1:38:5F:2B:9E", "MAC A四、C幺、三八、五F、二B、九E"),
        # Home Assistant's unit strings
        ("35 µg/m³", "三十五微克每立方米"), ("95.3 Mbit/s", "九十五点三兆比特每秒"), ("1.2 GiB", "一点二吉字节"),
        ("801 ppm", "八百零一PPM"), ("1013 hPa", "一千零一十三百帕"), ("15.2 kWh/100km", "十五点二千瓦时每百公里"),
        # slashes: 每 between units, a pause with spaces around, 或 between words, never a bare symbol
        ("41微克/立方米", "四十一微克每立方米"), ("1,100 转/分钟", "一千一百转每分钟"), ("1.21 元/kWh", "一点二一元每千瓦时"),
        ("单位：元/度", "单位：元每度"), ("开/关", "开或关"), ("23.5°C / 45%", "二十三点五摄氏度，百分之四十五"),
        ("TCP/IP", "TCP斜杠IP"),
        # strftime's zero-padded Chinese dates; days without time; a price per unit after the number
        ("2025年06月01日09时05分", "二零二五年六月一日九时零五分"), ("1 day, 0:00:00", "一天"),
        ("0.25 €/kWh", "零点二五欧元每千瓦时"), ("距离 1.2 mi", "距离一点二英里"),
    ],
)
def test_category(text: str, reading: str) -> None:
    assert normalize_zh(text) == reading


def test_chinese_punctuation_is_kept() -> None:
    assert normalize_zh("客厅温度23.5°C，湿度60%。") == "客厅温度二十三点五摄氏度，湿度百分之六十。"


@pytest.mark.skipif(not (SHARED_DATA / "tn" / "zh_dev.tsv").exists(), reason="development data ../shared/data is not in this checkout")
def test_development_set_accuracy() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from frontend_tn import evaluate

    result = evaluate(SHARED_DATA / "tn" / "zh_dev.tsv")
    assert result["accuracy"] >= 0.95, result["failures"]
