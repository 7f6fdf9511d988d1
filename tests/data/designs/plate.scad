// a 2D laser-cut plate: 60 x 40 mm with two 5 mm holes and a rounded slot
difference() {
  square([60, 40]);
  translate([10, 20]) circle(r = 2.5, $fn = 32);
  translate([50, 20]) circle(r = 2.5, $fn = 32);
  hull() { translate([25, 10]) circle(r = 3, $fn = 24); translate([35, 10]) circle(r = 3, $fn = 24); }
}
